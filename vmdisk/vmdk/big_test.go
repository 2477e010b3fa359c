package vmdk

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// TestSplitExtents reads a disk split by qemu into 2 GiB extents, with
// data straddling the extent boundary.
func TestSplitExtents(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	dir := t.TempDir()
	const size = 2<<30 + 4<<20
	src := filepath.Join(dir, "big.raw")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	runs := map[int64][]byte{
		1 << 20:          bytes.Repeat([]byte("first extent "), 1000),
		2<<30 - 100_000:  bytes.Repeat([]byte("across the 2 GiB boundary "), 8000),
		size - 70_000:    bytes.Repeat([]byte("last "), 14_000),
		1<<30 + 12345678: []byte("middle"),
	}
	for off, b := range runs {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	for _, sub := range []string{"twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			path := filepath.Join(dir, sub+".vmdk")
			imgtest.Convert(t, src, "raw", path, "vmdk", "subformat="+sub)
			img := openImage(t, path)
			if img.Size() != size || len(img.Info().Files) != 3 {
				t.Fatalf("size %d files %v", img.Size(), img.Info().Files)
			}
			for off, want := range runs {
				got := make([]byte, min(int64(len(want)+2048), size-off+1024))
				if _, err := img.ReadAt(got, off-1024); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(got[1024:1024+len(want)], want) || !allZero(got[:1024]) || !allZero(got[1024+len(want):]) {
					t.Fatalf("content at %d differs", off)
				}
			}
			ext, err := img.Extents()
			if err != nil {
				t.Fatal(err)
			}
			imgtest.CheckExtents(t, ext, size)
			var total int64
			for off, b := range runs {
				covered := false
				for _, e := range ext {
					if e.Offset <= off && e.End() >= off+int64(len(b)) {
						covered = true
					}
				}
				if !covered {
					t.Fatalf("data at %d+%d not inside %v", off, len(b), ext)
				}
			}
			for _, e := range ext {
				total += e.Length
			}
			if total > 16<<20 {
				t.Fatalf("%d bytes allocated", total)
			}
			if sub == "twoGbMaxExtentSparse" {
				want := imgtest.DataRanges(imgtest.Map(t, "vmdk", path))
				if !slices.Equal(ext, want) {
					t.Fatalf("extents %v\nqemu-img map %v", ext, want)
				}
			}
		})
	}
}

func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

// TestInUseQemu keeps a VMDK open in a real qemu-io process.
func TestInUseQemu(t *testing.T) {
	dir := copyFixture(t, "monolithicSparse.vmdk")
	path := filepath.Join(dir, "monolithicSparse.vmdk")
	info := imgtest.QemuLock(t, "vmdk", path, "QEMU holds it open for writing", func(o vmdisk.OpenOptions) (vmdisk.Image, error) { return Open(path, o) })
	if len(info.Reasons) != 1 {
		t.Fatalf("Info = %+v", info)
	}
}
