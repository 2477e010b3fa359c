package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
	"github.com/bunkerbackup/bunker/vmdisk/internal/zeros"
)

// TestReadQemuImages reads VHDs made by qemu-img and compares every byte
// with qemu-img's own raw conversion.
func TestReadQemuImages(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	// 20 MiB is not a CHS-aligned size: qemu's "vpc"/"qemu" creator sizes
	// by the rounded-up geometry, force_size keeps it exact.
	imgtest.ScatteredRaw(t, src, 20<<20, 1)
	cases := []struct {
		name, variant string
		opts          []string
	}{
		{"dynamic", "dynamic", nil},
		{"fixed", "fixed", []string{"-o", "subformat=fixed"}},
		{"forcesize", "dynamic", []string{"-o", "subformat=dynamic,force_size=on"}},
		{"fixed-forcesize", "fixed", []string{"-o", "subformat=fixed,force_size=on"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".vhd")
			args := append([]string{"convert", "-f", "raw", "-O", "vpc"}, c.opts...)
			imgtest.QemuImg(t, append(args, src, path)...)
			want := imgtest.QemuRaw(t, "vpc", path)
			if vs := imgtest.VirtualSize(t, "vpc", path); vs != int64(len(want)) {
				t.Fatalf("qemu virtual size %d, raw conversion %d bytes", vs, len(want))
			}
			// Through the registry, with format detection.
			img, err := vmdisk.Open(path, "", vmdisk.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			info := img.Info()
			if info.Format != "vhd" || info.Variant != c.variant || info.InUse || len(info.Files) != 1 {
				t.Fatalf("Info = %+v", info)
			}
			if img.SectorSize() != 512 {
				t.Fatalf("SectorSize = %d", img.SectorSize())
			}
			imgtest.CheckImage(t, img, want)
			imgtest.ReadConcurrently(t, img, want)
			if c.variant == "dynamic" {
				// Three 2 MiB blocks of data hold nothing: extents must
				// not cover the whole disk.
				ext, _ := img.Extents()
				var total int64
				for _, e := range ext {
					total += e.Length
				}
				if total >= img.Size() {
					t.Fatalf("dynamic image reports everything allocated: %v", ext)
				}
			}
		})
	}
}

// TestWriter writes dynamic and fixed VHDs and checks them with qemu-img.
func TestWriter(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	const size = 20<<20 + 3*512 // partial last block, not CHS-aligned
	want := imgtest.ScatteredRaw(t, src, size, 2)
	for _, variant := range []string{"", "dynamic", "fixed"} {
		t.Run("variant="+variant, func(t *testing.T) {
			path := filepath.Join(dir, "out-"+variant+".vhd")
			w, err := vmdisk.Create(path, "vhd", size, variant)
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != size {
				t.Fatalf("Size = %d", w.Size())
			}
			// Ascending writes of uneven pieces; zero pieces skipped like
			// a restore of a sparse disk does.
			for off, step := 0, 777<<10; off < size; off += step {
				end := min(off+step, size)
				if zeros.Is(want[off:end]) {
					continue
				}
				if n, err := w.WriteAt(want[off:end], int64(off)); err != nil || n != end-off {
					t.Fatalf("WriteAt = %d, %v", n, err)
				}
			}
			if _, err := w.WriteAt([]byte{1}, size); err == nil {
				t.Fatal("write beyond the disk succeeded")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("qemu-img", "check", "-f", "vpc", path)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); err != nil && code != 63 {
				t.Fatalf("qemu-img check: exit %d: %s", code, out)
			}
			imgtest.QemuImg(t, "compare", "-f", "raw", "-F", "vpc", src, path)
			if vs := imgtest.VirtualSize(t, "vpc", path); vs != size {
				t.Fatalf("qemu virtual size %d, want %d", vs, size)
			}
			img, err := Open(path, vmdisk.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			imgtest.CheckImage(t, img, want)
			if variant != "fixed" {
				st, _ := os.Stat(path)
				// Data lives in 6 of the 11 blocks.
				if st.Size() > 8*(DefaultBlockSize+512)+4096 {
					t.Fatalf("dynamic image is %d bytes: zero blocks were allocated", st.Size())
				}
			}
		})
	}
}

// TestWriterOutOfOrder writes blocks backwards and revisits a block.
func TestWriterOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	const size = 9 << 20
	want := make([]byte, size)
	for i := range want {
		if (i/4096)%3 == 0 {
			want[i] = byte(i*7 + i>>12)
		}
	}
	path := filepath.Join(dir, "o.vhd")
	w, err := Create(path, size, "")
	if err != nil {
		t.Fatal(err)
	}
	for off := size - (1 << 20); off >= 0; off -= 1 << 20 {
		if _, err := w.WriteAt(want[off:off+(1<<20)], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	// Rewrite part of block 0 after it was flushed.
	copy(want[100:], "again")
	if _, err := w.WriteAt(want[100:105], 100); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := Open(path, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	imgtest.CheckImage(t, img, want)
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		size    int64
		variant string
	}{{0, ""}, {1000, ""}, {MaxSize + 512, "fixed"}, {1 << 20, "sparse"}} {
		if w, err := Create(filepath.Join(dir, "x.vhd"), c.size, c.variant); err == nil {
			w.Close()
			t.Errorf("Create(%d, %q) succeeded", c.size, c.variant)
		}
	}
}

func TestGeometry(t *testing.T) {
	// Values from the VHD specification's algorithm, checked against
	// qemu's calculate_geometry for the sizes qemu does not round.
	for _, c := range []struct {
		size    int64
		c       uint16
		h, s    uint8
		fitsCHS bool
	}{
		{134217728, 963, 16, 17, false},
		{20 << 20, 602, 4, 17, false},
		{1 << 40, 65535, 16, 255, false},
		{200 << 30, 65535, 16, 255, false},
	} {
		cc, hh, ss := geometry(c.size)
		if cc != c.c || hh != c.h || ss != c.s {
			t.Errorf("geometry(%d) = %d/%d/%d, want %d/%d/%d", c.size, cc, hh, ss, c.c, c.h, c.s)
		}
	}
}

func TestProbe(t *testing.T) {
	raw := bytes.Repeat([]byte("not a vhd "), 10000)
	if Probe(raw[:4096], raw[len(raw)-4096:], int64(len(raw))) {
		t.Fatal("raw data probed as vhd")
	}
	img := vhdSpec{size: 64 << 10, blockSize: 4096, blocks: map[int64][]byte{1: []byte("x")}}.build()
	if !Probe(img[:4096], img[len(img)-4096:], int64(len(img))) {
		t.Fatal("dynamic vhd not probed")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f.vhd")
	w, err := Create(p, 64<<10, "fixed")
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, _ := os.ReadFile(p)
	if !Probe(b[:4096], b[len(b)-4096:], int64(len(b))) {
		t.Fatal("fixed vhd not probed")
	}
	// The legacy 511-byte footer.
	legacy := append(append([]byte(nil), b[:64<<10]...), b[64<<10:64<<10+511]...)
	if !Probe(legacy[:4096], legacy[len(legacy)-4096:], int64(len(legacy))) {
		t.Fatal("511-byte footer not probed")
	}
	lp := filepath.Join(dir, "legacy.vhd")
	os.WriteFile(lp, legacy, 0o644)
	li, err := Open(lp, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	li.Close()
	if li.Size() != 64<<10 {
		t.Fatalf("legacy size %d", li.Size())
	}
}

// TestSmallBlocks reads a hand-built dynamic VHD with 4 KiB blocks.
func TestSmallBlocks(t *testing.T) {
	const size = 100 << 10
	want := make([]byte, size)
	s := vhdSpec{size: size, blockSize: 4096, blocks: map[int64][]byte{}}
	for _, b := range []int64{0, 3, 4, 24} {
		d := bytes.Repeat([]byte{byte(b + 1)}, 4096)
		s.blocks[b] = d
		copy(want[b*4096:], d)
	}
	p := filepath.Join(t.TempDir(), "s.vhd")
	os.WriteFile(p, s.build(), 0o644)
	img, err := Open(p, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	imgtest.CheckImage(t, img, want)
	ext, _ := img.Extents()
	wantExt := []vmdisk.Extent{{Offset: 0, Length: 4096}, {Offset: 3 * 4096, Length: 8192}, {Offset: 24 * 4096, Length: 4096}}
	if len(ext) != 3 || ext[0] != wantExt[0] || ext[1] != wantExt[1] || ext[2] != wantExt[2] {
		t.Fatalf("Extents = %v, want %v", ext, wantExt)
	}
}

// setBits sets sectors [from, to) in a VHD bitmap.
func setBits(bm []byte, from, to int) {
	for i := from; i < to; i++ {
		bm[i/8] |= 0x80 >> (i % 8)
	}
}

// TestDifferencing builds differencing VHDs by hand (qemu-img cannot create
// them: "Backing file not supported for file format 'vpc'") on top of a
// qemu-made dynamic parent, and checks the merged content.
func TestDifferencing(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	imgtest.ScatteredRaw(t, src, 20<<20, 3)
	base := filepath.Join(dir, "base.vhd")
	imgtest.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", src, base)
	want := imgtest.QemuRaw(t, "vpc", base)
	bimg, err := Open(base, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	baseUID := bimg.UniqueID()
	bimg.Close()

	const bs = DefaultBlockSize
	size := int64(len(want))
	child := vhdSpec{
		size: size, blockSize: bs, diskType: diskDifferencing, uid: [16]byte{1, 2, 3},
		parentUID: baseUID, parent: "base.vhd",
		blocks: map[int64][]byte{}, bitmaps: map[int64][]byte{},
		locators: []locatorSpec{
			{"W2ku", utf16Bytes(`C:\vms\elsewhere\base.vhd`, binary.LittleEndian)},
			{"W2ru", utf16Bytes(`.\base.vhd`, binary.LittleEndian)},
		},
	}
	// Block 0: sectors 2..9 and 300 from the child, the rest from the parent.
	d0 := bytes.Repeat([]byte{0xC1}, bs)
	bm0 := make([]byte, 512)
	setBits(bm0, 2, 10)
	setBits(bm0, 300, 301)
	child.blocks[0], child.bitmaps[0] = d0, bm0
	copy(want[2*512:10*512], d0)
	copy(want[300*512:301*512], d0)
	// Block 3: the whole block from the child (hides parent data).
	d3 := bytes.Repeat([]byte{0xC3}, bs)
	child.blocks[3] = d3
	copy(want[3*bs:4*bs], d3)
	// Block 5: allocated but every bit clear: all from the parent.
	child.blocks[5], child.bitmaps[5] = bytes.Repeat([]byte{0xEE}, bs), make([]byte, 512)
	cpath := filepath.Join(dir, "child.vhd")
	os.WriteFile(cpath, child.build(), 0o644)

	img, err := vmdisk.Open(cpath, "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	info := img.Info()
	if info.Variant != "differencing" || len(info.Files) != 2 || info.Files[1] != base {
		t.Fatalf("Info = %+v", info)
	}
	imgtest.CheckImage(t, img, want)
	imgtest.ReadConcurrently(t, img, want)

	// A grandchild found through its MacX locator only.
	gwant := append([]byte(nil), want...)
	grand := vhdSpec{
		size: size, blockSize: bs, diskType: diskDifferencing, uid: [16]byte{4, 5, 6},
		parentUID: [16]byte{1, 2, 3},
		blocks:    map[int64][]byte{1: bytes.Repeat([]byte{0xD1}, bs)},
		bitmaps:   map[int64][]byte{1: make([]byte, 512)},
		locators:  []locatorSpec{{"MacX", []byte("file://" + cpath)}},
	}
	setBits(grand.bitmaps[1], 0, 1)
	copy(gwant[bs:bs+512], grand.blocks[1])
	gpath := filepath.Join(dir, "grand.vhd")
	os.WriteFile(gpath, grand.build(), 0o644)
	gimg, err := vmdisk.Open(gpath, "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer gimg.Close()
	if n := len(gimg.Info().Files); n != 3 {
		t.Fatalf("grandchild Files = %v", gimg.Info().Files)
	}
	imgtest.CheckImage(t, gimg, gwant)

	// Wrong parent unique id: the parent was replaced.
	bad := child
	bad.parentUID = [16]byte{9}
	bpath := filepath.Join(dir, "wrong-parent.vhd")
	os.WriteFile(bpath, bad.build(), 0o644)
	expectFormatError(t, bpath, "unique id")

	// Missing parent.
	miss := child
	miss.parent = "gone.vhd"
	miss.locators = []locatorSpec{{"W2ru", utf16Bytes(`.\gone.vhd`, binary.LittleEndian)}}
	mpath := filepath.Join(dir, "orphan.vhd")
	os.WriteFile(mpath, miss.build(), 0o644)
	expectFormatError(t, mpath, "parent not found")

	// A loop: the image names itself as its parent.
	loop := child
	loop.uid = [16]byte{7, 7, 7}
	loop.parentUID = loop.uid
	loop.parent = "loop.vhd"
	loop.locators = nil
	lpath := filepath.Join(dir, "loop.vhd")
	os.WriteFile(lpath, loop.build(), 0o644)
	expectFormatError(t, lpath, "deeper than")
}

// expectFormatError opens path and wants a *vmdisk.FormatError naming the
// file and containing msg.
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
	if fe.Path != path || fe.Format != "vhd" {
		t.Fatalf("FormatError %+v does not name %s", fe, path)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not mention %q", err, msg)
	}
	return fe
}

// TestBadInput damages valid images in the ways the issue lists.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	good := vhdSpec{size: size, blockSize: 4096, blocks: map[int64][]byte{0: {1}, 5: {2}, 15: {3}}}.build()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }

	p := write("truncated.vhd", good[:len(good)-3000])
	expectFormatError(t, p, "footer")

	p = write("tiny.vhd", good[:100])
	expectFormatError(t, p, "too short")

	p = write("footer-sum.vhd", mod(func(b []byte) []byte { b[50]++; return b }))
	fe := expectFormatError(t, p, "checksum")
	if fe.Struct != "footer copy" || fe.Offset != 0 {
		t.Fatalf("FormatError %+v", fe)
	}

	p = write("header-sum.vhd", mod(func(b []byte) []byte { b[512+100]++; return b }))
	fe = expectFormatError(t, p, "checksum")
	if fe.Struct != "dynamic header" || fe.Offset != 512 {
		t.Fatalf("FormatError %+v", fe)
	}

	// A BAT entry pointing past the end of the file (checksums stay valid:
	// the BAT has none).
	p = write("bat-eof.vhd", mod(func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[1536+4*5:], uint32(len(b)/512+10))
		return b
	}))
	fe = expectFormatError(t, p, "outside the data area")
	if fe.Struct != "BAT" || fe.Offset != 1536+20 {
		t.Fatalf("FormatError %+v", fe)
	}

	// A header whose BAT lies beyond the file.
	p = write("bat-offset.vhd", mod(func(b []byte) []byte {
		h, _ := parseDynHeader(b[512:1536])
		h.TableOffset = 1 << 40
		copy(b[512:], h.marshal())
		return b
	}))
	expectFormatError(t, p, "beyond the end")

	// A BAT too small for the disk.
	p = write("bat-small.vhd", mod(func(b []byte) []byte {
		h, _ := parseDynHeader(b[512:1536])
		h.MaxTableEntries = 3
		copy(b[512:], h.marshal())
		return b
	}))
	expectFormatError(t, p, "smaller than the disk")

	// A fixed VHD whose data was cut short.
	fp := filepath.Join(dir, "fixed.vhd")
	w, _ := Create(fp, size, "fixed")
	w.Close()
	fb, _ := os.ReadFile(fp)
	p = write("fixed-short.vhd", append(append([]byte(nil), fb[:size-4096]...), fb[size:]...))
	expectFormatError(t, p, "exceeds")

	// Garbage must not be taken for a VHD.
	p = write("garbage.vhd", bytes.Repeat([]byte{0x5A}, 4096))
	expectFormatError(t, p, "cookie")
}
