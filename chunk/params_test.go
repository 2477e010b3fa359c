//go:build linux && experiment

// The experiments in this file measure chunker parameters on a real disk
// image. They are not part of the test suite; run them by hand with the
// experiment build tag, for example:
//
//	BUNKER_PARAMS_IMAGE=/tmp/disk.img go test -tags experiment -run Experiment -v ./chunk/

package chunk

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// TestDiskParamsExperiment measures deduplication against chunk count for
// candidate disk chunker parameters on a real disk image, before and after
// scattered changes. It is an experiment, run by hand:
//
//	mkfs.ext4 -d SOME_TREE /tmp/disk.img 3G
//	BUNKER_PARAMS_IMAGE=/tmp/disk.img go test -tags experiment -run DiskParams -v ./chunk/
//
// It reports, per parameter set, the chunks of the disk, and the bytes of
// new chunks (plain and zstd-compressed) for two change patterns that
// together touch 2% of the disk: single 4 KiB pages, and runs of 1-64
// pages.
func TestDiskParamsExperiment(t *testing.T) {
	path := os.Getenv("BUNKER_PARAMS_IMAGE")
	if path == "" {
		t.Fatal("set BUNKER_PARAMS_IMAGE to a disk image to run the experiment")
	}
	sets := []Params{
		{Min: 512 << 10, AvgBits: 20, Max: 8 << 20},
		{Min: 256 << 10, AvgBits: 18, Max: 2 << 20},
		{Min: 64 << 10, AvgBits: 18, Max: 2 << 20},
		{Min: 64 << 10, AvgBits: 17, Max: 1 << 20},
		{Min: 32 << 10, AvgBits: 17, Max: 1 << 20},
		{Min: 64 << 10, AvgBits: 16, Max: 1 << 20},
		{Min: 32 << 10, AvgBits: 16, Max: 512 << 10},
		{Min: 16 << 10, AvgBits: 15, Max: 256 << 10},
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	size := fi.Size()
	ranges := dataRangesOf(t, f, size)
	var data int64
	for _, r := range ranges {
		data += r[1] - r[0]
	}
	// Pages to change: 2% of the disk size, placed in data ranges.
	changed := size / 50 / 4096
	pick := func(seed uint64, runs bool) map[int64]bool {
		rnd := rand.New(rand.NewPCG(seed, 3))
		pages := map[int64]bool{}
		for int64(len(pages)) < changed {
			r := ranges[rnd.IntN(len(ranges))]
			if r[1]-r[0] < 4096 {
				continue
			}
			p := (r[0] + rnd.Int64N(r[1]-r[0])) / 4096
			n := int64(1)
			if runs {
				n = 1 + rnd.Int64N(64)
			}
			for k := range n {
				if (p+k)*4096 < r[1] {
					pages[p+k] = true
				}
			}
		}
		return pages
	}
	patterns := []struct {
		name  string
		pages map[int64]bool
	}{
		{"single pages", pick(1, false)},
		{"runs of 1-64 pages", pick(2, true)},
	}
	t.Logf("image %s: %d MiB, %d MiB data; each change touches %d MiB (%d pages)", path, size>>20, data>>20, changed*4096>>20, changed)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	for _, p := range sets {
		base := map[[32]byte]bool{}
		var n int
		var stored int64
		scan(t, f, size, ranges, p, nil, func(c []byte) {
			n++
			stored += int64(len(c))
			base[blake3.Sum256(c)] = true
		})
		t.Logf("min %4d KiB avg_bits %d max %4d KiB: %6d chunks, mean %4d KiB, index ~%d KiB",
			p.Min>>10, p.AvgBits, p.Max>>10, n, stored/int64(max(n, 1))>>10, n*60>>10)
		for _, pat := range patterns {
			var newBytes, newComp int64
			var newChunks int
			var buf []byte
			scan(t, f, size, ranges, p, pat.pages, func(c []byte) {
				if base[blake3.Sum256(c)] {
					return
				}
				newChunks++
				newBytes += int64(len(c))
				buf = enc.EncodeAll(c, buf[:0])
				newComp += int64(min(len(buf), len(c)))
			})
			t.Logf("    %-18s: %5d new chunks, %5d MiB new, %5d MiB compressed (%.2fx the changed bytes)",
				pat.name, newChunks, newBytes>>20, newComp>>20, float64(newComp)/float64(changed*4096))
		}
	}
}

func dataRangesOf(t *testing.T, f *os.File, size int64) [][2]int64 {
	var out [][2]int64
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]int64{d, min(h, size)})
		off = h
	}
	return out
}

// scan segments the image, with the given pages overwritten by pseudo-random
// bytes, and calls fn for every data chunk.
func scan(t *testing.T, f *os.File, size int64, ranges [][2]int64, p Params, pages map[int64]bool, fn func([]byte)) {
	s, err := NewSplitter(testPol, p, NewPool(4, p.Max))
	if err != nil {
		t.Fatal(err)
	}
	seg := NewSegmenter(s, func(pc Piece) error {
		if pc.Data != nil {
			fn(pc.Data.Data)
			pc.Data.Release()
		}
		return nil
	})
	buf := make([]byte, 1<<20)
	var off int64
	for _, r := range ranges {
		seg.WriteZeros(r[0] - off)
		for off = r[0]; off < r[1]; {
			n := int(min(int64(len(buf)), r[1]-off))
			if _, err := f.ReadAt(buf[:n], off); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			for pg := off / 4096; pg*4096 < off+int64(n); pg++ {
				if pages[pg] {
					s, e := max(pg*4096, off)-off, min(pg*4096+4096, off+int64(n))-off
					copy(buf[s:e], testData(int(e-s), uint64(pg)+1))
				}
			}
			seg.Write(buf[:n])
			off += int64(n)
		}
	}
	seg.WriteZeros(size - off)
	seg.Close()
}

// TestZeroRunExperiment measures the effect of the zero-run threshold on
// a real disk image (see TestDiskParamsExperiment): data runs, chunks, and
// the zero bytes that end up inside chunks.
func TestZeroRunExperiment(t *testing.T) {
	path := os.Getenv("BUNKER_PARAMS_IMAGE")
	if path == "" {
		t.Fatal("set BUNKER_PARAMS_IMAGE to a disk image to run the experiment")
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := Params{Min: 64 << 10, AvgBits: 17, Max: 1 << 20}
	s, err := NewSplitter(testPol, p, NewPool(4, p.Max))
	if err != nil {
		t.Fatal(err)
	}
	for _, threshold := range []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		runs := ZeroRuns(img, BlockSize, threshold)
		var dataRuns, chunks int
		var stored, zeroInChunks int64
		prev := 0
		for _, z := range append(runs, [2]int{len(img), len(img)}) {
			if z[0] > prev {
				dataRuns++
				run := img[prev:z[0]]
				for off := 0; off < len(run); off += BlockSize {
					if IsZero(run[off:min(off+BlockSize, len(run))]) {
						zeroInChunks += int64(min(BlockSize, len(run)-off))
					}
				}
				emit := func(b *Buffer) error {
					chunks++
					stored += int64(len(b.Data))
					b.Release()
					return nil
				}
				s.Write(run, emit)
				s.Flush(emit)
			}
			prev = z[1]
		}
		t.Logf("zero runs >= %4d KiB: %6d data runs, %6d chunks (mean %3d KiB), %4d MiB in chunks of which %3d MiB zero blocks",
			threshold>>10, dataRuns, chunks, stored/int64(max(chunks, 1))>>10, stored>>20, zeroInChunks>>20)
	}
}
