package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// copyFixture copies fixture files into a new directory and returns it.
func copyFixture(t *testing.T, names ...string) string {
	t.Helper()
	src := fixtures(t)
	dst := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// openAndReadAll opens path and reads all of it and its extents; it
// returns the first error.
func openAndReadAll(path string, opts vmdisk.OpenOptions) error {
	return imgtest.ReadAll(Open(path, opts))
}

// wantFormatError fails unless err is a *vmdisk.FormatError whose text
// contains every fragment.
func wantFormatError(t *testing.T, err error, fragments ...string) {
	t.Helper()
	fe, ok := errorsAsFormat(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a FormatError", err, err)
	}
	if fe.Path == "" || fe.Struct == "" {
		t.Fatalf("FormatError without path or structure: %+v", fe)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

func TestTruncated(t *testing.T) {
	for _, name := range []string{"monolithicSparse.vmdk", "streamOptimized.vmdk"} {
		t.Run(name, func(t *testing.T) {
			dir := copyFixture(t, name)
			path := filepath.Join(dir, name)
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), path, "grain")
			if err := os.Truncate(path, 300); err != nil {
				t.Fatal(err)
			}
			wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "sparse header", "truncated")
		})
	}
	dir := copyFixture(t, "twoGbMaxExtentFlat.vmdk", "twoGbMaxExtentFlat-f001.vmdk")
	if err := os.Truncate(filepath.Join(dir, "twoGbMaxExtentFlat-f001.vmdk"), 1<<20); err != nil {
		t.Fatal(err)
	}
	wantFormatError(t, openAndReadAll(filepath.Join(dir, "twoGbMaxExtentFlat.vmdk"), vmdisk.OpenOptions{}), "flat extent", "needs")
}

func TestCorruptHeader(t *testing.T) {
	cases := []struct {
		name string
		off  int64
		data []byte
		want string
	}{
		{"grain size not a power of two", 20, u64(96), "grain size 96"},
		{"grain size zero", 20, u64(0), "grain size 0"},
		{"GD beyond EOF", 56, u64(1 << 30), "grain directory"},
		{"RGD offset absurd", 48, u64(1 << 62), "offset out of range"},
		{"bad version", 4, []byte{9, 0, 0, 0}, "unknown version 9"},
		{"newline bytes damaged", 73, []byte("\n \n\n"), "newline"},
		{"descriptor beyond EOF", 28, u64(1 << 30), "descriptor"},
		{"GTEs per GT", 44, []byte{0, 0x10, 0, 0}, "entries per grain table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyFixture(t, "monolithicSparse.vmdk")
			path := filepath.Join(dir, "monolithicSparse.vmdk")
			imgtest.Patch(t, path, c.off, c.data)
			wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), path, c.want)
		})
	}
}

func TestCorruptTables(t *testing.T) {
	dir := copyFixture(t, "monolithicSparse.vmdk")
	path := filepath.Join(dir, "monolithicSparse.vmdk")
	b, _ := os.ReadFile(path)
	gd := int64(binary.LittleEndian.Uint64(b[56:])) * 512
	gt0 := int64(binary.LittleEndian.Uint32(b[gd:])) * 512

	// A grain directory entry pointing past the end of the file.
	imgtest.Patch(t, path, gd, []byte{0xff, 0xff, 0xff, 0x0f})
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "grain directory", "beyond end of file")
	imgtest.Patch(t, path, gd, binary.LittleEndian.AppendUint32(nil, uint32(gt0/512)))
	if err := openAndReadAll(path, vmdisk.OpenOptions{}); err != nil {
		t.Fatalf("restored GD: %v", err)
	}
	// A grain table entry pointing past the end, and one into the header.
	for _, v := range []uint32{0x0fffffff, 3} {
		var idx int64 = -1
		for i := int64(0); i < 512; i++ {
			if binary.LittleEndian.Uint32(b[gt0+4*i:]) > 1 {
				idx = i
				break
			}
		}
		if idx < 0 {
			t.Fatal("no allocated grain in the first table")
		}
		imgtest.Patch(t, path, gt0+4*idx, binary.LittleEndian.AppendUint32(nil, v))
		wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "grain table 0", "outside the data area")
		imgtest.Patch(t, path, gt0+4*idx, b[gt0+4*idx:gt0+4*idx+4])
	}
}

func TestCorruptStream(t *testing.T) {
	dir := copyFixture(t, "streamOptimized.vmdk")
	path := filepath.Join(dir, "streamOptimized.vmdk")
	b, _ := os.ReadFile(path)
	gd := int64(binary.LittleEndian.Uint64(b[56:])) * 512
	gt0 := int64(binary.LittleEndian.Uint32(b[gd:])) * 512
	var grain int64
	for i := int64(0); i < 512; i++ {
		if v := binary.LittleEndian.Uint32(b[gt0+4*i:]); v > 1 {
			grain = int64(v) * 512
			break
		}
	}
	// Wrong LBA in a grain marker.
	imgtest.Patch(t, path, grain, u64(12345))
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "grain marker", "sector 12345")
	imgtest.Patch(t, path, grain, b[grain:grain+8])
	// Compressed size beyond the file.
	imgtest.Patch(t, path, grain+8, []byte{0xff, 0xff, 0xff, 0x7f})
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "grain marker", "compressed size")
	imgtest.Patch(t, path, grain+8, b[grain+8:grain+12])
	// Garbage instead of zlib data.
	imgtest.Patch(t, path, grain+12, bytes.Repeat([]byte{0xa5}, 64))
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "does not decompress")
}

// TestStreamFooter corrupts the footer of a VMware-layout stream written
// by this package.
func TestStreamFooter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.vmdk")
	w, err := Create(path, 4<<20, "streamOptimized")
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("data"), 1<<20)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if err := openAndReadAll(path, vmdisk.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	imgtest.Patch(t, path, fi.Size()-1024, []byte("XXXX"))
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "footer", "bad magic")
	imgtest.Patch(t, path, fi.Size()-1024, []byte("KDMV"))
	imgtest.Patch(t, path, fi.Size()-1024+56, u64(gdAtEnd))
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "footer", "no grain directory")
	if err := os.Truncate(path, 128*512+100); err != nil {
		t.Fatal(err)
	}
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "footer")
}

func TestMissingParent(t *testing.T) {
	dir := copyFixture(t, "child.vmdk")
	err := openAndReadAll(filepath.Join(dir, "child.vmdk"), vmdisk.OpenOptions{})
	wantFormatError(t, err, "parent", "monolithicSparse.vmdk", "not found")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%v does not wrap ErrNotExist", err)
	}
}

func TestCIDMismatch(t *testing.T) {
	dir := copyFixture(t, "child.vmdk", "monolithicSparse.vmdk")
	path := filepath.Join(dir, "child.vmdk")
	b, _ := os.ReadFile(path)
	// qemu-img writes the CID without leading zeros: 1 to 8 hex digits.
	loc := regexp.MustCompile(`parentCID=([0-9a-f]{1,8})\n`).FindSubmatchIndex(b)
	if loc == nil {
		t.Fatal("no parentCID in the child")
	}
	bad := "0badc0de"[8-(loc[3]-loc[2]):] // as many digits as the original
	if bad == string(b[loc[2]:loc[3]]) {
		bad = strings.Repeat("f", len(bad))
	}
	imgtest.Patch(t, path, int64(loc[2]), []byte(bad))
	v, _ := strconv.ParseUint(bad, 16, 32)
	wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), fmt.Sprintf("parentCID %08x does not match", v))
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParentLoop(t *testing.T) {
	dir := t.TempDir()
	desc := func(cid, parentCID, parent string) string {
		return "# Disk DescriptorFile\nversion=1\nCID=" + cid + "\nparentCID=" + parentCID +
			"\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"" + parent + "\"\nRW 2048 ZERO\n"
	}
	writeFile(t, filepath.Join(dir, "a.vmdk"), desc("aaaaaaaa", "bbbbbbbb", "b.vmdk"))
	writeFile(t, filepath.Join(dir, "b.vmdk"), desc("bbbbbbbb", "aaaaaaaa", "a.vmdk"))
	wantFormatError(t, openAndReadAll(filepath.Join(dir, "a.vmdk"), vmdisk.OpenOptions{}), "loop", "a.vmdk")
	writeFile(t, filepath.Join(dir, "tty.vmdk"), desc("cccccccc", "12345678", "/dev/tty"))
	wantFormatError(t, openAndReadAll(filepath.Join(dir, "tty.vmdk"), vmdisk.OpenOptions{}), "character device")
	writeFile(t, filepath.Join(dir, "self.vmdk"), desc("cccccccc", "cccccccc", "self.vmdk"))
	wantFormatError(t, openAndReadAll(filepath.Join(dir, "self.vmdk"), vmdisk.OpenOptions{}), "loop")
	// A parent of another format (raw) is followed through vmdisk.Open.
	writeFile(t, filepath.Join(dir, "c.vmdk"), desc("cccccccc", "12345678", "base.raw"))
	writeFile(t, filepath.Join(dir, "base.raw"), strings.Repeat("B", 4096))
	img, err := vmdisk.Open(filepath.Join(dir, "c.vmdk"), "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	// The ZERO extent hides nothing: it reads zeros, not the parent.
	got := make([]byte, 4)
	if _, err := img.ReadAt(got, 0); err != nil || string(got) != "\x00\x00\x00\x00" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestUnsupported(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ createType, extent string }{
		{"seSparse", `RW 2048 SESPARSE "x-sesparse.vmdk"`},
		{"vmfsSparse", `RW 2048 VMFSSPARSE "x-delta.vmdk"`},
		{"vmfsRawDeviceMap", `RW 2048 VMFSRDM "x-rdm.vmdk"`},
		{"vmfsPassthroughRawDeviceMap", `RW 2048 VMFSRAW "x-rdmp.vmdk"`},
		{"custom", `RW 2048 FLAT "x.bin" 0`},
		{"someFutureType", `RW 2048 FLAT "x.bin" 0`},
		{"monolithicFlat", `RW 2048 SESPARSE "x-sesparse.vmdk"`},
		{"monolithicFlat", `RW 2048 WHATEVER "x.bin"`},
		{"monolithicFlat", `NOACCESS 2048 FLAT "x.bin" 0`},
	} {
		path := filepath.Join(dir, "d.vmdk")
		writeFile(t, path, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\""+c.createType+"\"\n"+c.extent+"\n")
		if _, err := Open(path, vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrUnsupported) {
			t.Errorf("%s / %s: %v, want ErrUnsupported", c.createType, c.extent, err)
		}
	}
	se := filepath.Join(dir, "x-sesparse.vmdk")
	writeFile(t, se, "\xbe\xba\xfe\xca\x00\x00\x00\x00"+strings.Repeat("\x00", 4088))
	if _, err := vmdisk.Open(se, "", vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrUnsupported) {
		t.Errorf("SESparse extent: %v, want ErrUnsupported", err)
	}
	cowd := filepath.Join(dir, "cowd.vmdk")
	writeFile(t, cowd, "COWD"+strings.Repeat("\x00", 2044))
	if _, err := vmdisk.Open(cowd, "", vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrUnsupported) {
		t.Errorf("COWD: %v, want ErrUnsupported", err)
	}
}

func TestBadDescriptors(t *testing.T) {
	dir := t.TempDir()
	for _, text := range []string{
		"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n",                     // no extents
		"# Disk DescriptorFile\nversion=1\nCID=xyz\ncreateType=\"monolithicFlat\"\n",            // bad CID
		"# Disk DescriptorFile\nversion=1\nRW 10 FLAT \"a.bin\" 0\n",                            // no createType
		"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 10 FLAT \"missing.bin\" 0\n",  // missing extent
		"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW ten FLAT \"a.bin\" 0\n",       // bad size
		"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 10 FLAT \"a.bin\n",            // unterminated
		"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\njunk line\n",                     // junk
		"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\ncreateType=\"monolithicFlat\"\n", // duplicate
		"# Disk DescriptorFile\nparentCID=12345678\ncreateType=\"monolithicFlat\"\nRW 1 ZERO\n", // no hint
		"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 10 FLAT \"/dev/tty\" 0\n",     // not a file
	} {
		path := filepath.Join(dir, "d.vmdk")
		writeFile(t, path, text)
		wantFormatError(t, openAndReadAll(path, vmdisk.OpenOptions{}), "d.vmdk")
	}
}

func TestInUse(t *testing.T) {
	dir := copyFixture(t, "monolithicSparse.vmdk")
	path := filepath.Join(dir, "monolithicSparse.vmdk")
	if err := openAndReadAll(path, vmdisk.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	imgtest.Patch(t, path, 72, []byte{1})
	if _, err := Open(path, vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrInUse) || !strings.Contains(err.Error(), "uncleanShutdown") {
		t.Fatalf("unclean shutdown: %v", err)
	}
	img, err := Open(path, vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if info := img.Info(); !info.InUse || len(info.Reasons) != 1 {
		t.Fatalf("Info = %+v", info)
	}
	img.Close()
	imgtest.Patch(t, path, 72, []byte{0})
	if err := os.Mkdir(path+".lck", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrInUse) || !strings.Contains(err.Error(), ".lck") {
		t.Fatalf(".lck: %v", err)
	}
	os.Remove(path + ".lck")

	// A child whose parent is in use is in use too.
	dir = copyFixture(t, "child.vmdk", "monolithicSparse.vmdk")
	imgtest.Patch(t, filepath.Join(dir, "monolithicSparse.vmdk"), 72, []byte{1})
	if _, err := Open(filepath.Join(dir, "child.vmdk"), vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrInUse) {
		t.Fatalf("child of an in-use parent: %v", err)
	}
	img, err = Open(filepath.Join(dir, "child.vmdk"), vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if info := img.Info(); !info.InUse {
		t.Fatalf("Info = %+v", info)
	}
	img.Close()
}
