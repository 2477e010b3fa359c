package chunk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/restic/chunker"
)

// resticCuts returns the chunk lengths restic/chunker's BaseChunker cuts
// data into (the last one unterminated).
func resticCuts(pol uint64, p Params, data []byte) []int {
	c := chunker.NewBase(chunker.Pol(pol),
		chunker.WithBaseBoundaries(uint(p.Min), uint(p.Max)),
		chunker.WithBaseAverageBits(p.AvgBits))
	var out []int
	for len(data) > 0 {
		n := c.NextSplitPoint(data)
		if n < 0 {
			out = append(out, len(data))
			break
		}
		out = append(out, n)
		data = data[n:]
	}
	return out
}

// mixedTestData is random bytes with runs of zeros and of few distinct
// values, so that both matching windows (zeros) and long stretches without
// a match occur.
func mixedTestData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, 0, n)
	for len(b) < n {
		k := min(n-len(b), 1+rng.IntN(20000))
		switch rng.IntN(4) {
		case 0:
			b = append(b, make([]byte, k)...)
		case 1:
			for range k {
				b = append(b, byte(rng.IntN(3)))
			}
		default:
			for range k {
				b = append(b, byte(rng.Uint32()))
			}
		}
	}
	return b
}

// TestScanMatchesRestic checks that the splitter cuts exactly where
// restic/chunker does, for several polynomials, parameters, contents and
// write sizes.
func TestScanMatchesRestic(t *testing.T) {
	pols := []uint64{testPol}
	for range 3 {
		p, err := RandomPolynomial()
		if err != nil {
			t.Fatal(err)
		}
		pols = append(pols, p)
	}
	params := []Params{
		{Min: 32 << 10, Max: 512 << 10, AvgBits: 16},
		{Min: 64, Max: 64, AvgBits: 4},
		{Min: 64, Max: 300, AvgBits: 5},
		{Min: 65, Max: 9000, AvgBits: 9},
		{Min: 100, Max: 20000, AvgBits: 12},
		{Min: 4096, Max: 10000, AvgBits: 30},
		diskParams,
	}
	data := [][]byte{testData(3<<20, 11), mixedTestData(3<<20, 12), make([]byte, 100000)}
	for _, pol := range pols {
		for _, p := range params {
			for di, d := range data {
				want := resticCuts(pol, p, d)
				s, err := NewSplitter(pol, p, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, step := range []int{len(d), 1 << 20, 8191, 100, 63, 1} {
					if step == 1 && len(d) > 200000 {
						continue
					}
					var pieces [][]byte
					for off := 0; off < len(d); off += step {
						pieces = append(pieces, d[off:min(off+step, len(d))])
					}
					got := split(t, s, pieces...)
					if !bytes.Equal(bytes.Join(got, nil), d) {
						t.Fatalf("pol %#x %+v data %d step %d: chunks do not concatenate to the input", pol, p, di, step)
					}
					if fmt.Sprint(lengths(got)) != fmt.Sprint(want) {
						t.Fatalf("pol %#x %+v data %d step %d:\n got %v\nwant %v", pol, p, di, step, lengths(got), want)
					}
				}
			}
		}
	}
}

// TestScanLanes checks scan against scan1 around the lanes' edges: a
// single matching window placed at every offset of a stretch.
func TestScanLanes(t *testing.T) {
	r := newRabin(testPol)
	const n = scanLanes*laneLen*2 + 500
	base := testData(n, 13)
	// With 40 mask bits random windows never match; a window of zeros
	// always does.
	mask := uint64(1)<<40 - 1
	if j := r.scan(base, windowSize-1, n, mask); j != -1 {
		t.Fatalf("random data matched at %d", j)
	}
	for _, lo := range []int{63, 64, 65, 1000} {
		for end := lo; end < n; end += 1 + end%97 {
			b := append([]byte(nil), base...)
			clear(b[max(0, end-windowSize+1) : end+1])
			if end >= windowSize {
				b[end-windowSize] = 0xff // so the window ending before does not match too
			}
			want := r.scan1(b, lo, n, mask)
			if got := r.scan(b, lo, n, mask); got != want {
				t.Fatalf("lo %d zeros ending at %d: scan %d, scan1 %d", lo, end, got, want)
			}
			if end >= lo && want != max(end, lo) && want != -1 {
				t.Fatalf("lo %d zeros ending at %d: found %d", lo, end, want)
			}
		}
	}
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte("hello"), uint16(64), uint16(100), uint8(3), uint16(7))
	f.Add(testData(5000, 1), uint16(64), uint16(4000), uint8(6), uint16(333))
	f.Fuzz(func(t *testing.T, data []byte, min16, max16 uint16, bits uint8, step uint16) {
		p := Params{Min: int(min16), Max: int(max16), AvgBits: int(bits)}
		if p.Validate() != nil || step == 0 {
			return
		}
		s, err := NewSplitter(testPol, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		var pieces [][]byte
		for off := 0; off < len(data); off += int(step) {
			pieces = append(pieces, data[off:min(off+int(step), len(data))])
		}
		got := lengths(split(t, s, pieces...))
		want := []int{}
		if len(data) > 0 {
			want = resticCuts(testPol, p, data)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("%+v step %d: got %v, want %v", p, step, got, want)
		}
	})
}
