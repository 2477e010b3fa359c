package chunk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 4096, 256 << 10, 256<<10 + 1, 1 << 20} {
		b := make([]byte, n)
		if !IsZero(b) {
			t.Errorf("IsZero(%d zeros) = false", n)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			if n == 0 {
				continue
			}
			b[i] = 1
			if IsZero(b) {
				t.Errorf("IsZero with byte %d of %d set = true", i, n)
			}
			b[i] = 0
		}
	}
}

func TestZeroRuns(t *testing.T) {
	const bs, minRun = 4, 12
	b := []byte("\x00\x00\x00\x00abcd\x00\x00\x00\x00\x00\x00\x00\x00efgh\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ij\x00\x00\x00\x00\x00\x00")
	got := fmt.Sprint(ZeroRuns(b, bs, minRun))
	// leading run (any length), the 8-byte run is too short, the 12-byte
	// run counts; "ij\0\0" is a non-zero block; the trailing 4 zero bytes
	// are a run at the end.
	if want := "[[0 4] [20 32] [36 40]]"; got != want {
		t.Errorf("ZeroRuns = %s, want %s", got, want)
	}
}

// segStream builds a stream of data and zero ranges of awkward sizes.
func segStream(seed uint64) (data []byte, zeroRanges [][2]int) {
	r := rand.New(rand.NewPCG(seed, 1))
	zeroLens := []int{1, 100, 4096, 8191, 60 << 10, 64 << 10, 64<<10 + 4096, 100 << 10, 1 << 20, 3<<20 + 17}
	if r.IntN(2) == 0 {
		z := zeroLens[r.IntN(len(zeroLens))]
		zeroRanges = append(zeroRanges, [2]int{0, z})
		data = append(data, make([]byte, z)...)
	}
	for i := 0; i < 12; i++ {
		n := 1 + r.IntN(700<<10)
		if r.IntN(4) == 0 {
			n = 1 + r.IntN(5000)
		}
		data = append(data, testData(n, r.Uint64())...)
		z := zeroLens[r.IntN(len(zeroLens))]
		zeroRanges = append(zeroRanges, [2]int{len(data), len(data) + z})
		data = append(data, make([]byte, z)...)
	}
	if r.IntN(2) == 0 {
		data = append(data, testData(1+r.IntN(10000), r.Uint64())...)
	}
	return data, zeroRanges
}

type piece struct {
	off, n int64
	data   []byte // nil for a hole
}

// reference segments data in memory with ZeroRuns and a Splitter per run.
func reference(t *testing.T, s *Splitter, data []byte) []piece {
	var out []piece
	addHole := func(off, n int64) {
		if k := len(out); k > 0 && out[k-1].data == nil {
			out[k-1].n += n
			return
		}
		out = append(out, piece{off: off, n: n})
	}
	prev := 0
	runs := append(ZeroRuns(data, BlockSize, MinZeroRun), [2]int{len(data), len(data)})
	for _, z := range runs {
		if z[0] > prev {
			off := int64(prev)
			for _, c := range split(t, s, data[prev:z[0]]) {
				if IsZero(c) {
					addHole(off, int64(len(c)))
				} else {
					out = append(out, piece{off: off, n: int64(len(c)), data: c})
				}
				off += int64(len(c))
			}
		}
		if z[1] > z[0] {
			addHole(int64(z[0]), int64(z[1]-z[0]))
		}
		prev = z[1]
	}
	return out
}

type collector struct{ pieces []piece }

func (c *collector) emit(p Piece) error {
	var d []byte
	if p.Data != nil {
		if int64(len(p.Data.Data)) != p.Len {
			return fmt.Errorf("piece len %d, data %d", p.Len, len(p.Data.Data))
		}
		d = append([]byte{}, p.Data.Data...)
		p.Data.Release()
	}
	c.pieces = append(c.pieces, piece{off: p.Offset, n: p.Len, data: d})
	return nil
}

func comparePieces(t *testing.T, name string, got, want []piece) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d pieces, want %d", name, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.off != w.off || g.n != w.n || (g.data == nil) != (w.data == nil) || !bytes.Equal(g.data, w.data) {
			t.Fatalf("%s: piece %d is {%d %d hole=%v}, want {%d %d hole=%v}", name, i, g.off, g.n, g.data == nil, w.off, w.n, w.data == nil)
		}
	}
}

// TestSegmenterCanonical checks that the pieces depend only on the bytes:
// one Write, random piece sizes, and zero ranges given as WriteZeros all
// give the reference segmentation.
func TestSegmenterCanonical(t *testing.T) {
	s, err := NewSplitter(testPol, diskParams, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(0); seed < 6; seed++ {
		data, zeros := segStream(seed)
		want := reference(t, s, data)
		var total int64
		for i, p := range want {
			if p.off != total {
				t.Fatalf("seed %d: reference piece %d at %d, want %d", seed, i, p.off, total)
			}
			total += p.n
		}
		if total != int64(len(data)) {
			t.Fatalf("seed %d: reference covers %d of %d bytes", seed, total, len(data))
		}

		c := &collector{}
		seg := NewSegmenter(s, c.emit)
		feedAll := func(name string, feed func() error) {
			c.pieces = nil
			if err := feed(); err != nil {
				t.Fatal(err)
			}
			if err := seg.Close(); err != nil {
				t.Fatal(err)
			}
			comparePieces(t, fmt.Sprintf("seed %d %s", seed, name), c.pieces, want)
		}
		feedAll("one write", func() error { return seg.Write(data) })
		r := rand.New(rand.NewPCG(seed, 2))
		feedAll("random pieces", func() error {
			for off := 0; off < len(data); {
				n := min(len(data)-off, 1+r.IntN(300<<10))
				if err := seg.Write(data[off : off+n]); err != nil {
					return err
				}
				off += n
			}
			return nil
		})
		feedAll("known zeros", func() error {
			prev := 0
			for _, z := range zeros {
				if err := seg.Write(data[prev:z[0]]); err != nil {
					return err
				}
				if err := seg.WriteZeros(int64(z[1] - z[0])); err != nil {
					return err
				}
				prev = z[1]
			}
			return seg.Write(data[prev:])
		})
	}
}

func TestSegmenterAllZeroAndEmpty(t *testing.T) {
	s, _ := NewSplitter(testPol, diskParams, nil)
	c := &collector{}
	seg := NewSegmenter(s, c.emit)
	if err := seg.Close(); err != nil || len(c.pieces) != 0 {
		t.Fatalf("empty stream: %v, %d pieces", err, len(c.pieces))
	}
	seg.WriteZeros(1 << 40)
	seg.Write(make([]byte, 12345))
	seg.WriteZeros(3)
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
	if len(c.pieces) != 1 || c.pieces[0].data != nil || c.pieces[0].n != 1<<40+12348 {
		t.Fatalf("all-zero stream: %+v", c.pieces)
	}
}

// FuzzSegmenter checks that any split of any content into Write and
// WriteZeros calls gives the reference segmentation.
func FuzzSegmenter(f *testing.F) {
	f.Add([]byte("abc"), uint16(3), uint8(0))
	f.Add(testData(5000, 1), uint16(4096), uint8(7))
	f.Add(append(make([]byte, 70000), 1), uint16(1000), uint8(2))
	p := Params{Min: 256, Max: 4096, AvgBits: 8}
	s, err := NewSplitter(testPol, p, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, seed []byte, step uint16, zeroMask uint8) {
		// Expand the seed into a stream with zero stretches.
		if len(seed) > 48 {
			seed = seed[:48]
		}
		var data []byte
		for i, b := range seed {
			if b < 64 {
				data = append(data, make([]byte, int(b)*1024)...)
			} else {
				data = append(data, testData(int(b)*8, uint64(i)+1)...)
			}
		}
		want := reference(t, s, data)
		c := &collector{}
		seg := NewSegmenter(s, c.emit)
		step = max(step, 1)
		for i, off := 0, 0; off < len(data); i++ {
			n := min(len(data)-off, int(step))
			if zeroMask&(1<<(i%8)) != 0 && IsZero(data[off:off+n]) {
				seg.WriteZeros(int64(n))
			} else {
				seg.Write(data[off : off+n])
			}
			off += n
		}
		if err := seg.Close(); err != nil {
			t.Fatal(err)
		}
		comparePieces(t, "fuzz", c.pieces, want)
	})
}

func BenchmarkIsZero(b *testing.B) {
	z := make([]byte, 1<<20)
	b.SetBytes(int64(len(z)))
	for range b.N {
		if !IsZero(z) {
			b.Fatal("not zero")
		}
	}
}

// BenchmarkSegmenter measures scanning and chunking of content that is
// half zero runs.
func BenchmarkSegmenter(b *testing.B) {
	data := testData(32<<20, 6)
	for off := 0; off < len(data); off += 2 << 20 {
		clear(data[off : off+1<<20])
	}
	s, _ := NewSplitter(testPol, diskParams, NewPool(4, diskParams.Max))
	seg := NewSegmenter(s, func(p Piece) error {
		if p.Data != nil {
			p.Data.Release()
		}
		return nil
	})
	b.SetBytes(int64(len(data)))
	for range b.N {
		for off := 0; off < len(data); off += 1 << 20 {
			seg.Write(data[off : off+1<<20])
		}
		seg.Close()
	}
}
