package chunk

import "github.com/restic/chunker"

// The cut points are those of restic/chunker's BaseChunker, computed
// faster. A chunk of the stream ends after its L-th byte for the smallest L
// in [Min, Max] such that L == Max or the Rabin fingerprint of the 64 bytes
// ending there, ANDed with the mask, is zero. restic/chunker computes that
// fingerprint by sliding a window over every byte past Min-64; its digest
// at each position it tests is exactly the fingerprint of the 64 bytes
// before (the byte it starts the window with has slid out by then), so it
// is a function of those 64 bytes alone: GF(2)-linear in them, reduced
// modulo the polynomial.
//
// That makes the positions independent: scan rolls the fingerprint over
// several stretches of the input at once, each started afresh from the 63
// bytes before it, and takes the first match. A single rolling hash is a
// chain of dependent table look-ups (about 6 cycles a byte); interleaved
// chains keep the core's load units busy instead. TestScanMatchesRestic
// checks the cut points against restic/chunker.

// polShift is the degree of the polynomial (53, see CheckPolynomial)
// minus 8: the top byte of a digest that is about to overflow the degree.
const polShift = 53 - 8

// rabin holds the fingerprint tables of one polynomial.
type rabin struct {
	out [256]uint64 // out[b]: fingerprint of b followed by 63 zero bytes
	mod [256]uint64 // mod[b]: b·x^53 mod pol, with the bits b·x^53 that it cancels
}

// newRabin computes the tables of pol, which must be irreducible of
// degree 53, exactly as restic/chunker does.
func newRabin(pol uint64) *rabin {
	p := chunker.Pol(pol)
	appendByte := func(h chunker.Pol, b byte) chunker.Pol {
		return (h<<8 | chunker.Pol(b)).Mod(p)
	}
	t := &rabin{}
	for b := range 256 {
		h := appendByte(0, byte(b))
		for range windowSize - 1 {
			h = appendByte(h, 0)
		}
		t.out[b] = uint64(h)
		t.mod[b] = uint64(chunker.Pol(uint64(b)<<53).Mod(p) | chunker.Pol(b)<<53)
	}
	return t
}

// scanLanes is the number of stretches scanned at once, and laneLen the
// length of each: long enough that starting a lane (63 bytes) costs
// little, short enough that the lanes past a match waste little.
const (
	scanLanes = 4
	laneLen   = 2048
)

// scan returns the first index j in [lo, hi) at which the fingerprint of
// b[j-63:j+1] has no bit of mask set, or -1. lo must be at least 63.
func (t *rabin) scan(b []byte, lo, hi int, mask uint64) int {
	if lo < windowSize && lo < hi {
		if t.scan1(b, lo, lo+1, mask) == lo {
			return lo
		}
		lo++
	}
	for hi-lo >= scanLanes*laneLen {
		if j := t.scan4(b, lo, mask); j >= 0 {
			return j
		}
		lo += scanLanes * laneLen
	}
	return t.scan1(b, lo, hi, mask)
}

// start returns the fingerprint of w[:windowSize-1] with a zero byte
// before them: the state from which rolling in the next byte gives the
// fingerprint of the window ending at that byte.
func (t *rabin) start(w []byte) uint64 {
	var d uint64
	for _, c := range w[:windowSize-1] {
		d = (d<<8 | uint64(c)) ^ t.mod[d>>polShift&0xff]
	}
	return d
}

// scan1 is scan with one lane.
func (t *rabin) scan1(b []byte, lo, hi int, mask uint64) int {
	if lo >= hi {
		return -1
	}
	d := t.start(b[lo-windowSize+1:])
	// The first byte slides out a zero, whose out entry is zero.
	d = (d<<8 | uint64(b[lo])) ^ t.mod[d>>polShift&0xff]
	if d&mask == 0 {
		return lo
	}
	for j := lo + 1; j < hi; j++ {
		d ^= t.out[b[j-windowSize]]
		d = (d<<8 | uint64(b[j])) ^ t.mod[d>>polShift&0xff]
		if d&mask == 0 {
			return j
		}
	}
	return -1
}

// scan4 scans [lo, lo+scanLanes*laneLen) in scanLanes interleaved lanes;
// lo must be at least 64.
func (t *rabin) scan4(b []byte, lo int, mask uint64) int {
	// Each lane's window: the 64 bytes before its stretch, then the
	// stretch, so that w[i] slides out when w[i+windowSize] comes in.
	const n = laneLen + windowSize
	w0 := (*[n]byte)(b[lo-windowSize:])
	w1 := (*[n]byte)(b[lo+laneLen-windowSize:])
	w2 := (*[n]byte)(b[lo+2*laneLen-windowSize:])
	w3 := (*[n]byte)(b[lo+3*laneLen-windowSize:])
	out, mod := &t.out, &t.mod
	// Start each lane as scan1 does: the fingerprint of the 63 bytes before
	// the stretch, with a zero before them. The first step of the loop
	// slides out w[0], which is not part of it: XORing its out entry in
	// beforehand cancels that.
	d0 := t.start(w0[1:]) ^ out[w0[0]]
	d1 := t.start(w1[1:]) ^ out[w1[0]]
	d2 := t.start(w2[1:]) ^ out[w2[0]]
	d3 := t.start(w3[1:]) ^ out[w3[0]]
	f1, f2, f3 := -1, -1, -1 // first match in lanes 1 to 3
	for i := 0; i < laneLen; i++ {
		d0 ^= out[w0[i]]
		d1 ^= out[w1[i]]
		d2 ^= out[w2[i]]
		d3 ^= out[w3[i]]
		d0 = (d0<<8 | uint64(w0[i+windowSize])) ^ mod[d0>>polShift&0xff]
		d1 = (d1<<8 | uint64(w1[i+windowSize])) ^ mod[d1>>polShift&0xff]
		d2 = (d2<<8 | uint64(w2[i+windowSize])) ^ mod[d2>>polShift&0xff]
		d3 = (d3<<8 | uint64(w3[i+windowSize])) ^ mod[d3>>polShift&0xff]
		if (d0&mask == 0) || (d1&mask == 0) || (d2&mask == 0) || (d3&mask == 0) {
			if d0&mask == 0 {
				return lo + i
			}
			if d1&mask == 0 && f1 < 0 {
				f1 = i
			}
			if d2&mask == 0 && f2 < 0 {
				f2 = i
			}
			if d3&mask == 0 && f3 < 0 {
				f3 = i
			}
		}
	}
	switch {
	case f1 >= 0:
		return lo + laneLen + f1
	case f2 >= 0:
		return lo + 2*laneLen + f2
	case f3 >= 0:
		return lo + 3*laneLen + f3
	}
	return -1
}
