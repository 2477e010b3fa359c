package imgtest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// QemuRaw returns the guest bytes of an image as qemu-img converts them to
// raw.
func QemuRaw(t testing.TB, format, image string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "flat.raw")
	Convert(t, image, format, out, "raw")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ScatteredRaw writes a raw disk of size bytes (at least 13 MiB) at path
// and returns its content: pseudo-random data (from seed) in the first
// sectors, across 1 MiB and 2 MiB boundaries, over several whole MiBs, in
// the last sector and in an unaligned run at the middle, and a few bytes
// alone at 12 MiB, so that block formats get partial blocks, whole blocks
// and empty ones.
func ScatteredRaw(t testing.TB, path string, size int64, seed uint64) []byte {
	t.Helper()
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 7))
	fill := func(off, n int64) {
		for i := off; i < off+n && i < size; i++ {
			b[i] = byte(rng.Uint32())
		}
	}
	fill(0, 4096)                  // first sectors
	fill(3<<20-1000, 3000)         // straddles a 2 MiB... and 1 MiB boundary
	fill(5<<20, 3<<20)             // several whole blocks
	fill(size-512, 512)            // last sector
	copy(b[12<<20:], "HELLO, VHD") // a few bytes alone in a block
	fill(size/2+12345, 70000)      // unaligned run
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// CheckImage fails unless img reads exactly want, in odd-sized pieces,
// reads at and past the end behave like a file, and the extents pass
// [CheckImageExtents].
func CheckImage(t testing.TB, img vmdisk.Image, want []byte) {
	t.Helper()
	if img.Size() != int64(len(want)) {
		t.Fatalf("Size = %d, want %d", img.Size(), len(want))
	}
	// Whole disk in odd-sized pieces.
	got := make([]byte, len(want))
	for off, step := 0, 1<<20+1536+7; off < len(want); off += step {
		end := min(off+step, len(want))
		n, err := img.ReadAt(got[off:end], int64(off))
		if n != end-off || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", end-off, off, n, err)
		}
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("content differs first at offset %d: got %#x want %#x", i, got[i], want[i])
			}
		}
	}
	// Reads at and past the end behave like a file.
	p := make([]byte, 100)
	if n, err := img.ReadAt(p, int64(len(want))-40); n != 40 || err != io.EOF {
		t.Fatalf("ReadAt across the end = %d, %v; want 40, EOF", n, err)
	}
	if n, err := img.ReadAt(p, int64(len(want))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
	CheckImageExtents(t, img, want)
}

// CheckImageExtents fails unless img's extents are sorted, coalesced,
// inside the disk and cover every non-zero byte of want.
func CheckImageExtents(t testing.TB, img vmdisk.Image, want []byte) {
	t.Helper()
	ext, err := img.Extents()
	if err != nil {
		t.Fatalf("Extents: %v", err)
	}
	CheckExtents(t, ext, img.Size())
	coversBytes(t, ext, want)
}

// ReadConcurrently reads random ranges of img from 8 goroutines and fails
// unless every read returns the bytes of want.
func ReadConcurrently(t testing.TB, img vmdisk.Image, want []byte) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 300<<10)
			for range 50 {
				off := rng.Int64N(int64(len(want)))
				n := rng.IntN(len(buf)) + 1
				k, err := img.ReadAt(buf[:n], off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:k], want[off:off+int64(k)]) {
					errs <- errors.New("concurrent read returned wrong bytes")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// ReadAll takes the results of opening an image, lists its extents, reads
// all of it in 1 MiB pieces and closes it. It returns the first error,
// the open error included; reading past the end is no error.
func ReadAll(img vmdisk.Image, err error) error {
	if err != nil {
		return err
	}
	defer img.Close()
	if _, err := img.Extents(); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < img.Size(); off += int64(len(buf)) {
		if _, err := img.ReadAt(buf, off); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// Patch overwrites the bytes of the file at path at off with data.
func Patch(t testing.TB, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}
