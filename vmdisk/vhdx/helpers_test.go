package vhdx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// needQemu skips the test when qemu-img is missing, except in CI.
func needQemu(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "" {
			tb.Skip("qemu-img not installed")
		}
		tb.Fatal("qemu-img not installed (required in CI)")
	}
}

func qemu(tb testing.TB, args ...string) []byte {
	tb.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
	return out
}

// qemuRaw returns the guest bytes of an image as qemu-img sees them.
func qemuRaw(tb testing.TB, format, path string) []byte {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "flat.raw")
	qemu(tb, "convert", "-f", format, "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// qemuVirtualSize returns qemu-img info's virtual-size.
func qemuVirtualSize(tb testing.TB, format, path string) int64 {
	tb.Helper()
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(qemu(tb, "info", "--output=json", "-f", format, path), &info); err != nil {
		tb.Fatal(err)
	}
	return info.VirtualSize
}

// makeRaw writes a sparse raw disk of size bytes with data scattered so that
// it touches partial blocks, whole blocks, the first and the last sector.
func makeRaw(tb testing.TB, path string, size int64, seed uint64) []byte {
	tb.Helper()
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
		tb.Fatal(err)
	}
	return b
}

// checkImage compares everything img reads with want and checks Extents.
func checkImage(tb testing.TB, img vmdisk.Image, want []byte) {
	tb.Helper()
	if img.Size() != int64(len(want)) {
		tb.Fatalf("Size = %d, want %d", img.Size(), len(want))
	}
	// Whole disk in odd-sized pieces.
	got := make([]byte, len(want))
	for off, step := 0, 1<<20+1536+7; off < len(want); off += step {
		end := min(off+step, len(want))
		n, err := img.ReadAt(got[off:end], int64(off))
		if n != end-off || (err != nil && err != io.EOF) {
			tb.Fatalf("ReadAt(%d, %d) = %d, %v", end-off, off, n, err)
		}
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				tb.Fatalf("content differs first at offset %d: got %#x want %#x", i, got[i], want[i])
			}
		}
	}
	// Reads at and past the end behave like a file.
	p := make([]byte, 100)
	if n, err := img.ReadAt(p, int64(len(want))-40); n != 40 || err != io.EOF {
		tb.Fatalf("ReadAt across the end = %d, %v; want 40, EOF", n, err)
	}
	if n, err := img.ReadAt(p, int64(len(want))); n != 0 || err != io.EOF {
		tb.Fatalf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
	checkExtents(tb, img, want)
}

// checkExtents verifies that the extents are sorted, coalesced, inside the
// disk and cover every non-zero byte.
func checkExtents(tb testing.TB, img vmdisk.Image, want []byte) {
	tb.Helper()
	ext, err := img.Extents()
	if err != nil {
		tb.Fatalf("Extents: %v", err)
	}
	var prev int64 = -1
	for _, e := range ext {
		if e.Length <= 0 || e.Offset <= prev || e.End() > img.Size() {
			tb.Fatalf("bad extent list %v", ext)
		}
		prev = e.End()
	}
	covered := make([]bool, len(want))
	for _, e := range ext {
		for i := e.Offset; i < e.End(); i++ {
			covered[i] = true
		}
	}
	for i, c := range want {
		if c != 0 && !covered[i] {
			tb.Fatalf("non-zero byte at %d is outside every extent %v", i, ext)
		}
	}
}

// checkConcurrent reads random ranges from many goroutines.
func checkConcurrent(tb testing.TB, img vmdisk.Image, want []byte) {
	tb.Helper()
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
		tb.Fatal(err)
	}
}

// vhdxFile is a VHDX held in memory for patching in tests.
type vhdxFile []byte

func (b vhdxFile) region(id guid) (off, length int64) {
	rs, err := parseRegionTable(b[region1Offset:])
	if err != nil {
		panic(err)
	}
	for _, r := range rs {
		if r.GUID == id {
			return int64(r.Offset), int64(r.Length)
		}
	}
	panic("region not found")
}

// fixHeaders recomputes the CRC-32C of both headers.
func (b vhdxFile) fixHeaders() {
	for _, off := range []int{header1Offset, header2Offset} {
		le.PutUint32(b[off+4:], crc32c(b[off:off+headerSize], 4))
	}
}

// fixRegions recomputes the CRC-32C of both region tables.
func (b vhdxFile) fixRegions() {
	for _, off := range []int{region1Offset, region2Offset} {
		le.PutUint32(b[off+4:], crc32c(b[off:off+regionSize], 4))
	}
}

// batEntry returns a pointer-ish accessor to BAT entry i.
func (b vhdxFile) bat(i int64) uint64 {
	off, _ := b.region(regionBAT)
	return le.Uint64(b[off+8*i:])
}

func (b vhdxFile) setBAT(i int64, e uint64) {
	off, _ := b.region(regionBAT)
	le.PutUint64(b[off+8*i:], e)
}

// currentHeader returns the offset of the header with the larger sequence.
func (b vhdxFile) currentHeader() int {
	if le.Uint64(b[header2Offset+8:]) > le.Uint64(b[header1Offset+8:]) {
		return header2Offset
	}
	return header1Offset
}

// logEntrySpec describes one log entry to craft.
type logEntrySpec struct {
	seq     uint64
	tail    uint32
	guid    guid
	flushed uint64
	last    uint64
	writes  []logWrite
}

// build encodes the entry as MS-VHDX 2.3.1 describes.
func (s logEntrySpec) build() []byte {
	descSectors := (64 + 32*len(s.writes) + logSector - 1) / logSector
	nData := 0
	for _, w := range s.writes {
		if w.data != nil {
			nData++
		}
	}
	b := make([]byte, (descSectors+nData)*logSector)
	copy(b, "loge")
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint32(b[12:], s.tail)
	le.PutUint64(b[16:], s.seq)
	le.PutUint32(b[24:], uint32(len(s.writes)))
	copy(b[32:48], s.guid[:])
	le.PutUint64(b[48:], s.flushed)
	le.PutUint64(b[56:], s.last)
	next := descSectors * logSector
	for i, w := range s.writes {
		d := b[64+32*i:]
		le.PutUint64(d[16:], uint64(w.fileOff))
		le.PutUint64(d[24:], s.seq)
		if w.data == nil {
			copy(d, "zero")
			le.PutUint64(d[8:], uint64(w.zeroLen))
			continue
		}
		copy(d, "desc")
		copy(d[4:8], w.data[4092:])
		copy(d[8:16], w.data[:8])
		sec := b[next : next+logSector]
		copy(sec, "data")
		le.PutUint32(sec[4:], uint32(s.seq>>32))
		copy(sec[8:4092], w.data[8:4092])
		le.PutUint32(sec[4092:], uint32(s.seq))
		next += logSector
	}
	le.PutUint32(b[4:], crc32c(b, 4))
	return b
}
