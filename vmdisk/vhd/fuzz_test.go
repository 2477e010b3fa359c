package vhd

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// fuzzSeeds returns real VHDs: hand-built small ones always, qemu-made ones
// when qemu-img is installed.
func fuzzSeeds(tb testing.TB, dir string) [][]byte {
	tb.Helper()
	dyn := vhdSpec{size: 64 << 10, blockSize: 4096, uid: [16]byte{1},
		blocks: map[int64][]byte{0: []byte("first"), 7: []byte("seventh"), 15: {0xFF}}}
	parent := dyn.build()
	if err := os.WriteFile(filepath.Join(dir, "p.vhd"), parent, 0o644); err != nil {
		tb.Fatal(err)
	}
	diff := vhdSpec{size: 64 << 10, blockSize: 4096, diskType: diskDifferencing, uid: [16]byte{2},
		parentUID: [16]byte{1}, parent: "p.vhd",
		blocks:   map[int64][]byte{1: []byte("child"), 7: []byte("CHILD")},
		bitmaps:  map[int64][]byte{1: {0xF0}, 7: {0x01}},
		locators: []locatorSpec{{"W2ru", utf16Bytes(`.\p.vhd`, binary.LittleEndian)}}}
	fp := filepath.Join(dir, "fixed.vhd")
	w, err := Create(fp, 16<<10, "fixed")
	if err != nil {
		tb.Fatal(err)
	}
	w.WriteAt([]byte("fixed data"), 4096)
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	fixed, _ := os.ReadFile(fp)
	seeds := [][]byte{parent, diff.build(), fixed}
	if _, err := exec.LookPath("qemu-img"); err == nil {
		// Small on purpose: an empty dynamic disk (no blocks) and a
		// 64 KiB fixed one, so the fuzzer mutates kilobytes, not megabytes.
		raw := filepath.Join(dir, "s.raw")
		b := make([]byte, 64<<10)
		copy(b[5000:], "qemu seed")
		os.WriteFile(raw, b, 0o644)
		empty := filepath.Join(dir, "empty.raw")
		os.WriteFile(empty, make([]byte, 4<<20), 0o644)
		for _, c := range [][2]string{{"subformat=dynamic", empty}, {"subformat=fixed", raw}} {
			out := filepath.Join(dir, "q.vhd")
			if err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", c[0], c[1], out).Run(); err != nil {
				tb.Fatalf("qemu-img convert: %v", err)
			}
			q, _ := os.ReadFile(out)
			seeds = append(seeds, q)
		}
	}
	return seeds
}

// FuzzOpen opens mutated images held in memory and reads them: no input may
// panic, and a successful open must give a consistent image.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	for _, s := range fuzzSeeds(f, dir) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := open(bytes.NewReader(data), int64(len(data)), filepath.Join(dir, "fuzz.vhd"), vmdisk.OpenOptions{})
		if err != nil {
			return
		}
		defer img.Close()
		if img.Size() < 0 {
			t.Fatalf("negative size %d", img.Size())
		}
		buf := make([]byte, min(img.Size(), 256<<10))
		for _, off := range []int64{0, img.Size() / 2, img.Size() - int64(len(buf))} {
			img.ReadAt(buf, off)
		}
		ext, err := img.Extents()
		if err != nil {
			return
		}
		imgtest.CheckExtents(t, ext, img.Size())
	})
}

// FuzzFooter parses footers; a footer that parses must survive a round trip.
func FuzzFooter(f *testing.F) {
	for _, s := range fuzzSeeds(f, f.TempDir()) {
		f.Add(s[:footerSize])
		f.Add(s[len(s)-footerSize:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := parseFooter(b)
		if err != nil {
			return
		}
		again, err := parseFooter(ft.marshal())
		if err != nil || again != ft {
			t.Fatalf("round trip: %v, %+v != %+v", err, again, ft)
		}
		_ = ft.virtualSize()
	})
}

// FuzzDynHeader parses dynamic headers and decodes their parent names.
func FuzzDynHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f, f.TempDir()) {
		if len(s) >= footerSize+dynHeaderSize && string(s[footerSize:footerSize+8]) == "cxsparse" {
			f.Add(s[footerSize : footerSize+dynHeaderSize])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseDynHeader(b)
		if err != nil {
			return
		}
		again, err := parseDynHeader(h.marshal())
		if err != nil || again != h {
			t.Fatalf("round trip: %v", err)
		}
		_ = decodeUTF16(h.ParentName[:], binary.BigEndian)
	})
}
