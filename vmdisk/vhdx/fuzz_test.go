package vhdx

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// fuzzBase returns real VHDXs made by qemu-img: a clean dynamic one with
// 1 MiB blocks, and a copy with a crafted dirty log.
func fuzzBase(tb testing.TB) (clean, dirty []byte) {
	tb.Helper()
	imgtest.Need(tb, "qemu-img")
	dir := tb.TempDir()
	src := filepath.Join(dir, "s.raw")
	b := make([]byte, 6<<20)
	copy(b[100:], "fuzz seed data")
	copy(b[3<<20:], "more data in block 3")
	os.WriteFile(src, b, 0o644)
	path := filepath.Join(dir, "s.vhdx")
	imgtest.QemuImg(tb, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1048576", src, path)
	clean, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	d := vhdxFile(append([]byte(nil), clean...))
	g := guid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, off := range []int{header1Offset, header2Offset} {
		copy(d[off+48:off+64], g[:])
	}
	d.fixHeaders()
	batOff, _ := d.region(regionBAT)
	sec := append([]byte(nil), d[batOff:batOff+logSector]...)
	le.PutUint64(sec[0:], payloadZero)
	h := d.currentHeader()
	logOff := int64(le.Uint64(d[h+72:]))
	e := logEntrySpec{seq: 5, guid: g, flushed: uint64(len(d)), last: uint64(len(d)),
		writes: []logWrite{{fileOff: batOff, data: sec}, {fileOff: batOff + logSector, zeroLen: logSector}}}.build()
	copy(d[logOff:], e)
	return clean, d
}

// patched is a base image with one patch laid over it.
type patched struct {
	base  []byte
	off   int64
	patch []byte
}

func (p *patched) ReadAt(b []byte, off int64) (int, error) {
	n, err := (&sliceReader{p.base}).ReadAt(b, off)
	for i := range n {
		if j := off + int64(i) - p.off; j >= 0 && j < int64(len(p.patch)) {
			b[i] = p.patch[j]
		}
	}
	return n, err
}

type sliceReader struct{ b []byte }

func (r *sliceReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.b)) {
		return 0, errEOF
	}
	n := copy(p, r.b[off:])
	if n < len(p) {
		return n, errEOF
	}
	return n, nil
}

// FuzzOpen overwrites bytes of one structure of a real image (chosen by
// which) and opens and reads the result: nothing may panic, and a
// successful open must give a consistent image.
func FuzzOpen(f *testing.F) {
	clean, dirty := fuzzBase(f)
	cb := vhdxFile(clean)
	batOff, _ := cb.region(regionBAT)
	metaOff, _ := cb.region(regionMetadata)
	h := cb.currentHeader()
	logOff := int64(le.Uint64(cb[h+72:]))
	bases := []int64{header1Offset, header2Offset, region1Offset, region2Offset, metaOff, metaOff + metaTableSize, batOff, logOff}
	for i, base := range bases {
		for _, d := range []bool{false, true} {
			src := clean
			if d {
				src = dirty
			}
			f.Add(uint8(i), d, uint16(0), append([]byte(nil), src[base:base+64]...))
			f.Add(uint8(i), d, uint16(8), []byte{0xFF, 0, 0x10})
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, which uint8, useDirty bool, off uint16, patch []byte) {
		base := clean
		if useDirty {
			base = dirty
		}
		if len(patch) > 64<<10 {
			return
		}
		r := &patched{base: base, off: bases[int(which)%len(bases)] + int64(off), patch: patch}
		img, err := open(r, int64(len(base)), filepath.Join(dir, "fuzz.vhdx"), vmdisk.OpenOptions{Force: true})
		if err != nil {
			return
		}
		defer img.Close()
		buf := make([]byte, min(img.Size(), 1<<20))
		for _, o := range []int64{0, img.Size() / 2, img.Size() - int64(len(buf))} {
			img.ReadAt(buf, o)
		}
		if img.Size() > 1<<40 {
			return // Extents of a huge fuzzed disk only costs time
		}
		ext, err := img.Extents()
		if err != nil {
			return
		}
		imgtest.CheckExtents(t, ext, img.Size())
	})
}

func FuzzHeader(f *testing.F) {
	clean, dirty := fuzzBase(f)
	for _, b := range [][]byte{clean, dirty} {
		f.Add(b[header1Offset : header1Offset+headerSize])
		f.Add(b[header2Offset : header2Offset+headerSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseHeader(b)
	})
}

func FuzzRegionTable(f *testing.F) {
	clean, _ := fuzzBase(f)
	f.Add(clean[region1Offset : region1Offset+regionSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseRegionTable(b)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Offset%miB != 0 || r.Length%miB != 0 {
				t.Fatalf("unaligned region accepted: %+v", r)
			}
		}
	})
}

// FuzzMetadata parses a metadata region: the table and its items.
func FuzzMetadata(f *testing.F) {
	clean, _ := fuzzBase(f)
	metaOff, _ := vhdxFile(clean).region(regionMetadata)
	region := clean[metaOff : metaOff+metaTableSize+4096]
	f.Add(append([]byte(nil), region...))
	// With a parent locator item.
	withLoc := append([]byte(nil), region...)
	item := locatorItem([][2]string{{"parent_linkage", "{00000000-1111-2222-3333-444444444444}"}, {"relative_path", `.\p.vhdx`}})
	copy(withLoc[metaTableSize+0x800:], item)
	n := le.Uint16(withLoc[10:])
	e := withLoc[32+32*int(n):]
	copy(e, itemParentLocator[:])
	le.PutUint32(e[16:], metaTableSize+0x800)
	le.PutUint32(e[20:], uint32(len(item)))
	le.PutUint32(e[24:], 4)
	le.PutUint16(withLoc[10:], n+1)
	f.Add(withLoc)
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseMetadataTable(b, uint32(len(b)))
		if err != nil {
			return
		}
		parseMetadata(entries, func(e metaEntry) ([]byte, error) {
			return b[e.Offset : e.Offset+e.Length], nil
		})
	})
}

// FuzzLog replays fuzzed logs (64 KiB) seeded with crafted valid entries.
func FuzzLog(f *testing.F) {
	g := guid{9, 9, 9}
	sec := make([]byte, logSector)
	copy(sec, "some metadata sector")
	add := func(entries ...[]byte) {
		log := make([]byte, 64<<10)
		off := 0
		for _, e := range entries {
			copy(log[off:], e)
			off += len(e)
		}
		f.Add(log)
	}
	e1 := logEntrySpec{seq: 1, guid: g, flushed: 4 << 20, last: 5 << 20,
		writes: []logWrite{{fileOff: 2 << 20, data: sec}, {fileOff: 3 << 20, zeroLen: 8192}}}.build()
	e2 := logEntrySpec{seq: 2, tail: 0, guid: g, flushed: 4 << 20, last: 5 << 20,
		writes: []logWrite{{fileOff: 2<<20 + 4096, data: sec}}}.build()
	add(e1)
	add(e1, e2)
	add(logEntrySpec{seq: 1 << 40, guid: g, flushed: 1 << 20, last: 1 << 20}.build())
	f.Fuzz(func(t *testing.T, log []byte) {
		ov, err := replayLog(log, g, 4<<20)
		if err != nil {
			return
		}
		for off, d := range ov.data {
			if off%logSector != 0 || len(d) != logSector {
				t.Fatalf("bad overlay sector at %d (%d bytes)", off, len(d))
			}
		}
		v := &fileView{r: &sliceReader{make([]byte, 4<<20)}, phys: 4 << 20, size: max(4<<20, ov.minSize), ov: ov}
		buf := make([]byte, 64<<10)
		v.ReadAt(buf, 2<<20)
	})
}

var errEOF = io.EOF
