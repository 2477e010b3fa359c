package vhd

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"unicode/utf16"

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

// vhdSpec describes a dynamic or differencing VHD built byte by byte, for
// what qemu-img cannot make (differencing disks, odd block sizes, damage).
type vhdSpec struct {
	size      int64
	blockSize int64
	diskType  uint32
	creator   string
	uid       [16]byte
	blocks    map[int64][]byte // block index -> blockSize bytes
	bitmaps   map[int64][]byte // block index -> sector bitmap (default all ones)
	parentUID [16]byte
	parent    string // UTF-16BE parent name
	locators  []locatorSpec
}

type locatorSpec struct {
	code string
	data []byte
}

func utf16Bytes(s string, order binary.ByteOrder) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		order.PutUint16(b[2*i:], c)
	}
	return b
}

func (s vhdSpec) build() []byte {
	if s.creator == "" {
		s.creator = "win "
	}
	if s.diskType == 0 {
		s.diskType = diskDynamic
	}
	c, h, spt := geometry(s.size)
	ft := footer{Features: 2, Version: 0x00010000, DataOffset: footerSize, CurrentSize: uint64(s.size), OriginalSize: uint64(s.size),
		Cylinders: c, Heads: h, SectorsPerTrk: spt, DiskType: s.diskType, UniqueID: s.uid}
	copy(ft.Creator[:], s.creator)
	n := (s.size + s.blockSize - 1) / s.blockSize
	bmSize := (s.blockSize/512/8 + 511) / 512 * 512
	hdr := dynHeader{TableOffset: 1536, HeaderVersion: 0x00010000, MaxTableEntries: uint32(n), BlockSize: uint32(s.blockSize), ParentUniqueID: s.parentUID}
	copy(hdr.ParentName[:], utf16Bytes(s.parent, binary.BigEndian))
	off := int64(1536) + (4*n+511)/512*512
	var tail bytes.Buffer
	for i, l := range s.locators {
		copy(hdr.Locators[i].Code[:], l.code)
		hdr.Locators[i].DataOffset = uint64(off)
		hdr.Locators[i].DataLength = uint32(len(l.data))
		hdr.Locators[i].DataSpace = uint32((len(l.data) + 511) / 512 * 512)
		d := make([]byte, (len(l.data)+511)/512*512)
		copy(d, l.data)
		tail.Write(d)
		off += int64(len(d))
	}
	bat := make([]byte, (4*n+511)/512*512)
	for i := range bat {
		bat[i] = 0xFF
	}
	for i := range n {
		d, ok := s.blocks[i]
		if !ok {
			continue
		}
		binary.BigEndian.PutUint32(bat[4*i:], uint32(off/512))
		bm, ok := s.bitmaps[i]
		if !ok {
			bm = bytes.Repeat([]byte{0xFF}, int(bmSize))
		}
		bmPad := make([]byte, bmSize)
		copy(bmPad, bm)
		tail.Write(bmPad)
		blk := make([]byte, s.blockSize)
		copy(blk, d)
		tail.Write(blk)
		off += bmSize + s.blockSize
	}
	fb := ft.marshal()
	var out bytes.Buffer
	out.Write(fb)
	out.Write(hdr.marshal())
	out.Write(bat)
	out.Write(tail.Bytes())
	out.Write(fb)
	return out.Bytes()
}
