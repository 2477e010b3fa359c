package vhdx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// TestReadQemuImages reads VHDXs made by qemu-img and compares every byte
// with qemu-img's raw conversion.
func TestReadQemuImages(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	imgtest.ScatteredRaw(t, src, 20<<20+4096, 1)
	cases := []struct {
		name, variant string
		opts          []string
	}{
		{"dynamic", "dynamic", nil},
		{"fixed", "fixed", []string{"-o", "subformat=fixed"}},
		{"block1m", "dynamic", []string{"-o", "block_size=1048576"}},
		{"block32m", "dynamic", []string{"-o", "block_size=33554432,log_size=2097152"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".vhdx")
			args := append([]string{"convert", "-f", "raw", "-O", "vhdx"}, c.opts...)
			imgtest.QemuImg(t, append(args, src, path)...)
			want := imgtest.QemuRaw(t, "vhdx", path)
			if vs := imgtest.VirtualSize(t, "vhdx", path); vs != int64(len(want)) {
				t.Fatalf("qemu virtual size %d, raw %d", vs, len(want))
			}
			img, err := vmdisk.Open(path, "", vmdisk.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			info := img.Info()
			if info.Format != "vhdx" || info.Variant != c.variant || info.InUse || len(info.Files) != 1 {
				t.Fatalf("Info = %+v", info)
			}
			if img.SectorSize() != 512 {
				t.Fatalf("SectorSize = %d", img.SectorSize())
			}
			imgtest.CheckImage(t, img, want)
			imgtest.ReadConcurrently(t, img, want)
		})
	}
}

// TestExtentsSkipZeroBlocks: qemu marks all-zero blocks ZERO, even in a
// fixed VHDX; they must not be reported as allocated.
func TestExtentsSkipZeroBlocks(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	b := make([]byte, 40<<20)
	copy(b[9<<20:], "only block 1 has data")
	os.WriteFile(src, b, 0o644)
	for _, sub := range []string{"dynamic", "fixed"} {
		path := filepath.Join(dir, sub+".vhdx")
		imgtest.QemuImg(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat="+sub, src, path)
		img, err := Open(path, vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ext, err := img.Extents()
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(ext) != 1 || ext[0] != (vmdisk.Extent{Offset: 8 << 20, Length: 8 << 20}) {
			t.Fatalf("%s: Extents = %v, want block 1 only", sub, ext)
		}
	}
}

// dirtyImage makes a qemu VHDX and gives it a dirty log of two entries (a
// BAT update and a zeroed range) plus an older, stale sequence that must not
// be replayed. It returns the image path and the guest bytes the log
// produces by construction.
func dirtyImage(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	src := filepath.Join(dir, "disk.raw")
	want := imgtest.ScatteredRaw(t, src, 20<<20, 4)
	path := filepath.Join(dir, "dirty.vhdx")
	imgtest.QemuImg(t, "convert", "-f", "raw", "-O", "vhdx", src, path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := vhdxFile(raw)
	batOff, _ := b.region(regionBAT)
	blk0 := fileOffset(b.bat(0))
	if state(b.bat(0)) != payloadFullyPresent || state(b.bat(1)) != payloadFullyPresent {
		t.Fatalf("unexpected BAT states %#x %#x", b.bat(0), b.bat(1))
	}
	h := b.currentHeader()
	logOff := int64(le.Uint64(b[h+72:]))
	logLen := int64(le.Uint32(b[h+68:]))
	g := guid{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, off := range []int{header1Offset, header2Offset} {
		copy(b[off+48:off+64], g[:])
	}
	b.fixHeaders()

	// Entry 1 (seq 41, at log offset 0): rewrite the first BAT sector
	// with block 1 in state ZERO.
	batSector := append([]byte(nil), b[batOff:batOff+logSector]...)
	le.PutUint64(batSector[8:], payloadZero)
	fileSize := uint64(len(b))
	e1 := logEntrySpec{seq: 41, tail: 0, guid: g, flushed: fileSize, last: fileSize,
		writes: []logWrite{{fileOff: batOff, data: batSector}}}.build()
	// Entry 2 (seq 42, tail = entry 1): zero 8 KiB of block 0's payload
	// at guest offset 5 MiB.
	e2 := logEntrySpec{seq: 42, tail: 0, guid: g, flushed: fileSize, last: fileSize,
		writes: []logWrite{{fileOff: blk0 + 5<<20, zeroLen: 8192}}}.build()
	// A stale, complete sequence with a lower number: it would zero the
	// whole BAT sector if replayed.
	stale := logEntrySpec{seq: 7, tail: uint32(logLen / 2), guid: g, flushed: fileSize, last: fileSize,
		writes: []logWrite{{fileOff: batOff, zeroLen: logSector}}}.build()
	copy(b[logOff:], e1)
	copy(b[logOff+int64(len(e1)):], e2)
	copy(b[logOff+logLen/2:], stale)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	clear(want[8<<20 : 16<<20])
	clear(want[5<<20 : 5<<20+8192])
	return path, want
}

// TestDirtyLogReplay checks the in-memory replay against qemu's own replay
// (qemu-img check -r all on a copy) and against the expected content.
func TestDirtyLogReplay(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	path, want := dirtyImage(t, dir)
	before, _ := os.ReadFile(path)

	_, err := Open(path, vmdisk.OpenOptions{})
	if !errors.Is(err, vmdisk.ErrInUse) {
		t.Fatalf("Open without Force: %v, want ErrInUse", err)
	}
	img, err := vmdisk.Open(path, "", vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	info := img.Info()
	if !info.InUse || len(info.Reasons) != 1 || info.Reasons[0] != InUseReason {
		t.Fatalf("Info = %+v", info)
	}
	if n := img.(*Image).LogEntriesReplayed(); n != 2 {
		t.Fatalf("replayed %d entries, want 2", n)
	}
	imgtest.CheckImage(t, img, want)
	imgtest.ReadConcurrently(t, img, want)

	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("opening the image modified the source file")
	}

	// qemu replays the log when repairing a copy; its result must match.
	cp := filepath.Join(dir, "copy.vhdx")
	os.WriteFile(cp, before, 0o644)
	imgtest.QemuImg(t, "check", "-r", "all", "-f", "vhdx", cp)
	if got := imgtest.QemuRaw(t, "vhdx", cp); !bytes.Equal(got, want) {
		t.Fatal("qemu's log replay gives different content than expected")
	}
}

func TestDirtyLogInvalid(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	path, _ := dirtyImage(t, dir)
	b, _ := os.ReadFile(path)
	h := vhdxFile(b).currentHeader()
	logOff := int64(le.Uint64(b[h+72:]))
	// Damage one byte in each entry: entry 1, entry 2 and the stale one
	// (which would otherwise become the active sequence).
	logLen := int64(le.Uint32(b[h+68:]))
	b[logOff+100]++
	b[logOff+2*logSector+100]++
	b[logOff+logLen/2+100]++
	os.WriteFile(path, b, 0o644)
	_, err := Open(path, vmdisk.OpenOptions{Force: true})
	var fe *vmdisk.FormatError
	if !errors.As(err, &fe) || fe.Struct != "log" || !strings.Contains(err.Error(), "cannot be replayed") {
		t.Fatalf("Open = %v, want a log FormatError", err)
	}
	if fe.Offset != logOff {
		t.Fatalf("offset %d, want %d", fe.Offset, logOff)
	}

	// A log entry saying the file used to be bigger: truncated.
	path2, _ := dirtyImage(t, t.TempDir())
	b2, _ := os.ReadFile(path2)
	b2 = b2[:len(b2)-(1<<20)]
	os.WriteFile(path2, b2, 0o644)
	_, err = Open(path2, vmdisk.OpenOptions{Force: true})
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Open truncated dirty image = %v", err)
	}
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		le.PutUint16(b[2*i:], c)
	}
	return b
}

// locatorItem encodes a VHDX parent locator.
func locatorItem(kv [][2]string) []byte {
	b := make([]byte, 20+12*len(kv))
	copy(b, locatorTypeVHDX[:])
	le.PutUint16(b[18:], uint16(len(kv)))
	for i, p := range kv {
		k, v := utf16le(p[0]), utf16le(p[1])
		e := b[20+12*i:]
		le.PutUint32(e, uint32(len(b)))
		le.PutUint16(e[8:], uint16(len(k)))
		b = append(b, k...)
		e = b[20+12*i:]
		le.PutUint32(e[4:], uint32(len(b)))
		le.PutUint16(e[10:], uint16(len(v)))
		b = append(b, v...)
	}
	return b
}

// makeDifferencing turns a qemu-made dynamic VHDX into a differencing disk
// of parent (qemu-img cannot create VHDX differencing disks): HasParent is
// set, a parent locator item is added to the metadata, block 0 becomes
// PARTIALLY_PRESENT with a sector bitmap appended to the file, block 1
// NOT_PRESENT; block 2 stays FULLY_PRESENT.
func makeDifferencing(t *testing.T, childRaw []byte, linkage, relPath string, bits [][2]int64) []byte {
	t.Helper()
	b := vhdxFile(append([]byte(nil), childRaw...))
	metaOff, _ := b.region(regionMetadata)
	n := int64(le.Uint16(b[metaOff+10:]))
	for i := range n {
		e := b[metaOff+32+32*i:]
		var id guid
		copy(id[:], e)
		if id == itemFileParameters {
			fp := b[metaOff+int64(le.Uint32(e[16:])):]
			le.PutUint32(fp[4:], le.Uint32(fp[4:])|2)
		}
	}
	item := locatorItem([][2]string{{"parent_linkage", linkage}, {"relative_path", relPath}, {"absolute_win32_path", `\\?\C:\vms\parent.vhdx`}})
	const itemOff = 0x20000
	copy(b[metaOff+itemOff:], item)
	e := b[metaOff+32+32*n:]
	copy(e, itemParentLocator[:])
	le.PutUint32(e[16:], itemOff)
	le.PutUint32(e[20:], uint32(len(item)))
	le.PutUint32(e[24:], 4) // IsRequired
	le.PutUint16(b[metaOff+10:], uint16(n+1))

	// Sector bitmap block for chunk 0, appended (the file is MiB-aligned).
	bmOff := int64(len(b))
	bm := make([]byte, miB)
	for _, r := range bits {
		for s := r[0]; s < r[1]; s++ {
			bm[s/8] |= 1 << (s % 8)
		}
	}
	b = append(b, bm...)
	const chunkRatio = 512 // 2^23 × 512 / 8 MiB
	b.setBAT(chunkRatio, uint64(bmOff)|bitmapPresent)
	b.setBAT(0, b.bat(0)&^7|payloadPartiallyPresent)
	b.setBAT(1, payloadNotPresent)
	return b
}

func TestDifferencing(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	psrc, csrc := filepath.Join(dir, "p.raw"), filepath.Join(dir, "c.raw")
	pwant := imgtest.ScatteredRaw(t, psrc, 20<<20, 10)
	cwant := imgtest.ScatteredRaw(t, csrc, 20<<20, 11)
	ppath, cpath := filepath.Join(dir, "parent.vhdx"), filepath.Join(dir, "c.vhdx")
	imgtest.QemuImg(t, "convert", "-f", "raw", "-O", "vhdx", psrc, ppath)
	imgtest.QemuImg(t, "convert", "-f", "raw", "-O", "vhdx", csrc, cpath)
	pimg, err := Open(ppath, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	linkage := pimg.DataWriteGUID()
	pimg.Close()
	craw, _ := os.ReadFile(cpath)

	// Sectors 0..7 and 5 MiB..6 MiB of block 0 from the child.
	bits := [][2]int64{{0, 8}, {10240, 12288}}
	want := append([]byte(nil), pwant...)
	copy(want[0:4096], cwant[0:4096])
	copy(want[5<<20:6<<20], cwant[5<<20:6<<20])
	copy(want[16<<20:], cwant[16<<20:])

	diff := filepath.Join(dir, "diff.vhdx")
	os.WriteFile(diff, makeDifferencing(t, craw, linkage, `.\parent.vhdx`, bits), 0o644)
	img, err := vmdisk.Open(diff, "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	info := img.Info()
	if info.Variant != "differencing" || len(info.Files) != 2 || info.Files[1] != ppath {
		t.Fatalf("Info = %+v", info)
	}
	imgtest.CheckImage(t, img, want)
	imgtest.ReadConcurrently(t, img, want)

	// Upper-case linkage and only the absolute path's file name.
	alt := filepath.Join(dir, "alt.vhdx")
	os.WriteFile(alt, makeDifferencing(t, craw, strings.ToUpper(linkage), `..\elsewhere\gone.vhdx`, bits), 0o644)
	aimg, err := Open(alt, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aimg.Close()

	// The parent was modified since: linkage mismatch.
	bad := filepath.Join(dir, "bad.vhdx")
	os.WriteFile(bad, makeDifferencing(t, craw, "{00000000-1111-2222-3333-444444444444}", `.\parent.vhdx`, bits), 0o644)
	expectFormatError(t, bad, "parent_linkage")

	// Missing parent.
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	orphan := filepath.Join(sub, "orphan.vhdx")
	os.WriteFile(orphan, makeDifferencing(t, craw, linkage, `.\nothere.vhdx`, bits), 0o644)
	expectFormatError(t, orphan, "parent not found")

	// A loop: the disk is its own parent.
	loop := filepath.Join(dir, "loop.vhdx")
	os.WriteFile(loop, makeDifferencing(t, craw, linkage, `.\loop.vhdx`, bits), 0o644)
	limg, err := Open(loop, vmdisk.OpenOptions{})
	if err == nil {
		limg.Close()
		t.Fatal("a self-referencing disk opened")
	}
}

func expectFormatError(t *testing.T, path, msg string) *vmdisk.FormatError {
	t.Helper()
	img, err := Open(path, vmdisk.OpenOptions{})
	if err == nil {
		img.Close()
		t.Fatalf("%s opened without error", path)
	}
	var fe *vmdisk.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a FormatError", err, err)
	}
	if fe.Path != path || fe.Format != "vhdx" {
		t.Fatalf("FormatError %+v does not name %s", fe, path)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not mention %q", err, msg)
	}
	return fe
}

func TestBadInput(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	imgtest.ScatteredRaw(t, src, 20<<20, 5)
	path := filepath.Join(dir, "good.vhdx")
	imgtest.QemuImg(t, "convert", "-f", "raw", "-O", "vhdx", src, path)
	good, _ := os.ReadFile(path)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	mod := func(f func(b vhdxFile)) []byte {
		b := vhdxFile(append([]byte(nil), good...))
		f(b)
		return b
	}

	expectFormatError(t, write("short.vhdx", good[:100]), "shorter")
	expectFormatError(t, write("truncated.vhdx", good[:3<<20+512<<10]), "beyond the end")
	last := fileOffset(vhdxFile(good).bat(2))
	expectFormatError(t, write("truncated-data.vhdx", good[:last+512<<10]), "outside the file")

	fe := expectFormatError(t, write("headers.vhdx", mod(func(b vhdxFile) {
		b[header1Offset+100]++
		b[header2Offset+100]++
	})), "CRC-32C")
	if fe.Struct != "header" {
		t.Fatalf("FormatError %+v", fe)
	}
	// One damaged header: the other one is used.
	img, err := Open(write("one-header.vhdx", mod(func(b vhdxFile) { b[b.currentHeader()+100]++ })), vmdisk.OpenOptions{})
	if err != nil {
		t.Fatalf("one damaged header: %v", err)
	}
	img.Close()
	expectFormatError(t, write("regions.vhdx", mod(func(b vhdxFile) {
		b[region1Offset+100]++
		b[region2Offset+100]++
	})), "region table")

	fe = expectFormatError(t, write("bat-eof.vhdx", mod(func(b vhdxFile) {
		b.setBAT(1, uint64(len(b)+(5<<20))|payloadFullyPresent)
	})), "outside the file")
	batOff, _ := vhdxFile(good).region(regionBAT)
	if fe.Struct != "BAT" || fe.Offset != batOff+8 {
		t.Fatalf("FormatError %+v", fe)
	}
	expectFormatError(t, write("bat-state.vhdx", mod(func(b vhdxFile) { b.setBAT(2, b.bat(2)&^7|4) })), "invalid state")
	expectFormatError(t, write("bat-partial.vhdx", mod(func(b vhdxFile) { b.setBAT(0, b.bat(0)&^7|7) })), "without a parent")
	expectFormatError(t, write("blocksize.vhdx", mod(func(b vhdxFile) {
		metaOff, _ := b.region(regionMetadata)
		le.PutUint32(b[metaOff+0x10000:], 3<<20)
	})), "block size")

	// Unknown required metadata item and region: unsupported, by name.
	_, err = Open(write("meta-unknown.vhdx", mod(func(b vhdxFile) {
		metaOff, _ := b.region(regionMetadata)
		b[metaOff+32+32*4] ^= 0xFF // physical sector size item, IsRequired
		le.PutUint32(b[metaOff+32+32*4+24:], 4)
	})), vmdisk.OpenOptions{})
	if !errors.Is(err, vmdisk.ErrUnsupported) || !strings.Contains(err.Error(), "unknown required metadata item") {
		t.Fatalf("unknown required item: %v", err)
	}
	_, err = Open(write("region-unknown.vhdx", mod(func(b vhdxFile) {
		for _, off := range []int{region1Offset, region2Offset} {
			n := le.Uint32(b[off+8:])
			e := b[off+16+32*int(n):]
			copy(e, []byte("0123456789abcdef"))
			le.PutUint64(e[16:], 100<<20)
			le.PutUint32(e[24:], 1<<20)
			le.PutUint32(e[28:], 1)
			le.PutUint32(b[off+8:], n+1)
		}
		b.fixRegions()
	})), vmdisk.OpenOptions{})
	if !errors.Is(err, vmdisk.ErrUnsupported) || !strings.Contains(err.Error(), "unknown required region") {
		t.Fatalf("unknown required region: %v", err)
	}
}

func TestGUID(t *testing.T) {
	g := mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	want := []byte{0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08}
	if !bytes.Equal(g[:], want) {
		t.Fatalf("on-disk form %x, want %x", g[:], want)
	}
	if s := g.String(); s != "2dc27766-f623-4200-9d64-115e9bfd4a08" {
		t.Fatalf("String = %s", s)
	}
	for _, bad := range []string{"", "{}", "2DC27766F6234200-9D64-115E9BFD4A08xx", "zzc27766-f623-4200-9d64-115e9bfd4a08"} {
		if _, err := parseGUID(bad); err == nil {
			t.Errorf("parseGUID(%q) succeeded", bad)
		}
	}
}

// Test4KSectors: a VHDX with 4096-byte logical sectors (qemu cannot make
// one, so the Logical Sector Size item of a qemu image is patched; for a
// disk this small the BAT layout is the same).
func Test4KSectors(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	imgtest.ScatteredRaw(t, src, 20<<20, 6)
	path := filepath.Join(dir, "4k.vhdx")
	imgtest.QemuImg(t, "convert", "-f", "raw", "-O", "vhdx", src, path)
	want := imgtest.QemuRaw(t, "vhdx", path)
	b, _ := os.ReadFile(path)
	f := vhdxFile(b)
	metaOff, _ := f.region(regionMetadata)
	n := int64(le.Uint16(f[metaOff+10:]))
	for i := range n {
		e := f[metaOff+32+32*i:]
		var id guid
		copy(id[:], e)
		if id == itemLogicalSectorSize {
			le.PutUint32(f[metaOff+int64(le.Uint32(e[16:])):], 4096)
		}
	}
	os.WriteFile(path, f, 0o644)
	img, err := Open(path, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.SectorSize() != 4096 {
		t.Fatalf("SectorSize = %d", img.SectorSize())
	}
	imgtest.CheckImage(t, img, want)
}
