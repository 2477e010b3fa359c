package vmdk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

// The source disk: not a multiple of the 64 KiB grain, so the last grain
// is partial.
const diskSize = 40<<20 + 3*512

var (
	fixOnce sync.Once
	fixDir  string
	fixErr  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// fixtures builds (once per test binary) the raw source disk and its VMDK
// conversions with qemu-img, and returns their directory.
func fixtures(t *testing.T) string {
	t.Helper()
	imgtest.Need(t, "qemu-img")
	imgtest.Need(t, "qemu-io")
	imgtest.Need(t, "sfdisk")
	fixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vmdk-fixtures-")
		if err != nil {
			fixErr = err.Error()
			return
		}
		fixDir = dir
		ft := &fixtureT{T: t}
		buildFixtures(ft, dir)
		fixErr = ft.failed
	})
	if fixErr != "" {
		t.Fatalf("building fixtures: %s", fixErr)
	}
	return fixDir
}

// fixtureT records the first failure while building shared fixtures, so
// the failure shows in every test that needs them.
type fixtureT struct {
	*testing.T
	failed string
}

func buildFixtures(t *fixtureT, dir string) {
	src := imgtest.GPTDisk(t, dir, "disk.raw", diskSize)
	for _, sub := range []string{"monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		imgtest.Convert(t, src, "raw", filepath.Join(dir, sub+".vmdk"), "vmdk", "subformat="+sub)
	}
	// ESXi-style descriptor: createType vmfs, VMFS extent, CRLF lines and
	// a file name with spaces.
	if err := os.Rename(filepath.Join(dir, "monolithicFlat-flat.vmdk"), filepath.Join(dir, "esx disk-flat.vmdk")); err != nil {
		t.Fatal(err)
	}
	esx := "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\nparentCID=ffffffff\r\n" +
		"createType=\"vmfs\"\r\n\r\n# Extent description\r\nRW 81923 VMFS \"esx disk-flat.vmdk\"\r\n\r\n" +
		"# The Disk Data Base\r\n#DDB\r\n\r\nddb.adapterType = \"lsilogic\"\r\nddb.thinProvisioned = \"1\"\r\n"
	if err := os.WriteFile(filepath.Join(dir, "esx disk.vmdk"), []byte(esx), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "monolithicFlat.vmdk"))
	// A child with its own data over the parent, and a zeroed-grain child
	// whose zero writes hide parent data.
	child := filepath.Join(dir, "child.vmdk")
	imgtest.QemuImg(t, "create", "-q", "-f", "vmdk", "-b", "monolithicSparse.vmdk", "-F", "vmdk", child)
	imgtest.Run(t, "qemu-io", "-f", "vmdk", "-c", "write -P 0xcd 30M 1M", "-c", "write -P 0xee 9437000 5000", child)
	imgtest.Convert(t, child, "vmdk", filepath.Join(dir, "expected-child.raw"), "raw")
	zchild := filepath.Join(dir, "zchild.vmdk")
	imgtest.QemuImg(t, "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", "monolithicSparse.vmdk", "-F", "vmdk", zchild)
	imgtest.Run(t, "qemu-io", "-f", "vmdk", "-c", "write -z 9M 256k", "-c", "write -P 0x11 20M 64k", zchild)
	imgtest.Convert(t, zchild, "vmdk", filepath.Join(dir, "expected-zchild.raw"), "raw")
}

func (t *fixtureT) Fatal(args ...any) {
	t.failed = fmt.Sprint(args...)
	t.T.Fatal(args...)
}

func (t *fixtureT) Fatalf(format string, args ...any) {
	t.failed = fmt.Sprintf(format, args...)
	t.T.Fatalf(format, args...)
}

func openImage(t *testing.T, path string) vmdisk.Image {
	t.Helper()
	img, err := vmdisk.Open(path, "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func TestRead(t *testing.T) {
	dir := fixtures(t)
	src := filepath.Join(dir, "disk.raw")
	cases := []struct {
		file, variant string
		files         int
		qemuMap       bool // extents must equal qemu-img map's data ranges
	}{
		{"monolithicSparse.vmdk", "monolithicSparse", 1, true},
		{"streamOptimized.vmdk", "streamOptimized", 1, true},
		{"twoGbMaxExtentSparse.vmdk", "twoGbMaxExtentSparse", 2, true},
		{"twoGbMaxExtentFlat.vmdk", "twoGbMaxExtentFlat", 2, false},
		{"esx disk.vmdk", "vmfs", 2, false},
	}
	for _, c := range cases {
		t.Run(c.variant, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			img := openImage(t, path)
			info := img.Info()
			if info.Format != "vmdk" || info.Variant != c.variant || len(info.Files) != c.files || info.Files[0] != path || info.InUse {
				t.Fatalf("Info = %+v", info)
			}
			if img.Size() != diskSize || img.SectorSize() != 512 {
				t.Fatalf("size %d sector %d", img.Size(), img.SectorSize())
			}
			ext := imgtest.CheckRaw(t, img, src, diskSize)
			if c.qemuMap {
				imgtest.MatchMap(t, ext, "vmdk", path)
			}
		})
	}
}

func TestChild(t *testing.T) {
	dir := fixtures(t)
	for _, name := range []string{"child", "zchild"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".vmdk")
			img := openImage(t, path)
			info := img.Info()
			if !slices.Equal(info.Files, []string{path, filepath.Join(dir, "monolithicSparse.vmdk")}) {
				t.Fatalf("Files = %v", info.Files)
			}
			expected := filepath.Join(dir, "expected-"+name+".raw")
			ext := imgtest.CheckRaw(t, img, expected, diskSize)
			imgtest.MatchMap(t, ext, "vmdk", path)
		})
	}
}

func TestWrite(t *testing.T) {
	dir := fixtures(t)
	src := filepath.Join(dir, "disk.raw")
	for _, variant := range []string{"", "streamOptimized"} {
		t.Run("variant="+variant, func(t *testing.T) {
			in, err := raw.Open(src, vmdisk.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out := filepath.Join(t.TempDir(), "out disk.vmdk")
			w, err := vmdisk.Create(out, "vmdk", in.Size(), variant)
			if err != nil {
				t.Fatal(err)
			}
			copyImage(t, in, w, []int{1 << 20, 4096, 70000, 512})
			if _, err := w.WriteAt([]byte{1}, 0); err == nil {
				t.Fatal("descending write accepted")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			imgtest.Check(t, "vmdk", out)
			imgtest.Compare(t, src, "vmdk", out)
			if got := imgtest.VirtualSize(t, "vmdk", out); got != diskSize {
				t.Fatalf("qemu-img virtual size %d", got)
			}
			img := openImage(t, out)
			want := "monolithicSparse"
			if variant != "" {
				want = variant
			}
			if img.Info().Variant != want {
				t.Fatalf("variant %q", img.Info().Variant)
			}
			ext := imgtest.CheckRaw(t, img, src, img.Size())
			imgtest.MatchMap(t, ext, "vmdk", out)
			// All-zero grains are not stored: the allocated-zero run of the
			// source (1 MiB at 12 MiB) must be unallocated.
			for _, e := range ext {
				if e.Offset < 13<<20 && e.End() > 12<<20 {
					t.Fatalf("zero run stored: %v", e)
				}
			}
		})
	}
}

func TestWriteEmptyAndTiny(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	for _, variant := range []string{"monolithicSparse", "streamOptimized"} {
		for _, size := range []int64{0, 512, 3 << 20} {
			out := filepath.Join(dir, variant+".vmdk")
			w, err := Create(out, size, variant)
			if err != nil {
				t.Fatal(err)
			}
			if size > 0 {
				if _, err := w.WriteAt([]byte("x"), size-1); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if size > 0 { // qemu cannot open its own empty VMDKs either
				imgtest.Check(t, "vmdk", out)
			}
			img, err := Open(out, vmdisk.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if img.Size() != size {
				t.Fatalf("%s size %d: read back %d", variant, size, img.Size())
			}
			if size > 0 {
				b := make([]byte, 1)
				if _, err := img.ReadAt(b, size-1); err != nil || b[0] != 'x' {
					t.Fatalf("%s: last byte %q, %v", variant, b, err)
				}
			}
			img.Close()
		}
	}
	if _, err := Create(filepath.Join(dir, "x.vmdk"), 1<<20, "twoGbMaxExtentFlat"); err == nil {
		t.Fatal("unknown variant accepted")
	}
	if _, err := Create(filepath.Join(dir, "x.vmdk"), 3<<40, ""); err == nil {
		t.Fatal("3 TiB sparse VMDK accepted")
	}
}

// copyImage copies img's extents to w in ascending order, in pieces whose
// sizes cycle through sizes.
func copyImage(t *testing.T, img vmdisk.Image, w vmdisk.Writer, sizes []int) {
	t.Helper()
	ext, err := img.Extents()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, slices.Max(sizes))
	i := 0
	for _, e := range ext {
		for off := e.Offset; off < e.End(); i++ {
			n := min(int64(sizes[i%len(sizes)]), e.End()-off)
			if _, err := img.ReadAt(buf[:n], off); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if _, err := w.WriteAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
			off += n
		}
	}
}

func TestProbe(t *testing.T) {
	dir := fixtures(t)
	for _, f := range []string{"monolithicSparse.vmdk", "streamOptimized.vmdk", "twoGbMaxExtentFlat.vmdk", "esx disk.vmdk"} {
		head, _ := os.ReadFile(filepath.Join(dir, f))
		if !Probe(head[:min(len(head), 64<<10)], nil, int64(len(head))) {
			t.Errorf("%s not probed as VMDK", f)
		}
	}
	head, _ := os.ReadFile(filepath.Join(dir, "disk.raw"))
	if Probe(head[:64<<10], nil, diskSize) {
		t.Error("raw disk probed as VMDK")
	}
	if Probe([]byte("version=1\ncreateType=\"x\"\n"), nil, 1<<20) {
		t.Error("large text file probed as VMDK")
	}
}

func errorsAsFormat(err error) (*vmdisk.FormatError, bool) {
	var fe *vmdisk.FormatError
	ok := errors.As(err, &fe)
	return fe, ok
}
