package raw

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

const diskSize = 32<<20 + 3*512

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	src := imgtest.GPTDisk(t, dir, "disk.raw", diskSize)
	img, err := vmdisk.Open(src, "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if got := img.Info(); got.Format != "raw" || got.InUse || !slices.Equal(got.Files, []string{src}) {
		t.Fatalf("Info = %+v", got)
	}
	if img.Size() != diskSize || img.SectorSize() != 512 {
		t.Fatalf("size %d sector %d", img.Size(), img.SectorSize())
	}
	ext := imgtest.CheckRaw(t, img, src, diskSize)
	imgtest.MatchMap(t, ext, "raw", src)
	var total int64
	for _, e := range ext {
		total += e.Length
	}
	if holeMap && total >= diskSize/2 {
		t.Fatalf("%d of %d bytes allocated: holes not found", total, diskSize)
	}
}

func TestEmptyAndNonRegular(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.raw")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := Open(empty, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if ext, err := img.Extents(); err != nil || len(ext) != 0 {
		t.Fatalf("Extents = %v, %v", ext, err)
	}
	if n, err := img.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if _, err := Open(dir, vmdisk.OpenOptions{}); err == nil {
		t.Fatal("opened a directory")
	}
	if _, err := OpenBlockDevice(empty, vmdisk.OpenOptions{}); err == nil {
		t.Fatal("opened a regular file as a device")
	}
}

func TestWriteSparse(t *testing.T) {
	dir := t.TempDir()
	src := imgtest.GPTDisk(t, dir, "disk.raw", diskSize)
	img, err := Open(src, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	out := filepath.Join(dir, "out.raw")
	w, err := vmdisk.Create(out, "raw", img.Size(), "")
	if err != nil {
		t.Fatal(err)
	}
	copyImage(t, img, w, 1<<20+512)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	imgtest.Compare(t, src, "raw", out)
	if fi, err := os.Stat(out); err != nil || fi.Size() != diskSize {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	// The explicitly written zero run of the source must be a hole here.
	if n, ok := allocatedBytes(t, out); ok && n >= diskSize/4 {
		t.Fatalf("%d bytes allocated: not sparse", n)
	}
	if _, err := w.WriteAt([]byte{1}, diskSize); err == nil {
		t.Fatal("write past the end accepted")
	}
	if _, err := Create(out, 10, "thick"); err == nil {
		t.Fatal("unknown variant accepted")
	}
}

// copyImage copies every allocated extent of img to w in ascending order.
func copyImage(t *testing.T, img vmdisk.Image, w vmdisk.Writer, bs int) {
	t.Helper()
	ext, err := img.Extents()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, bs)
	for _, e := range ext {
		for off := e.Offset; off < e.End(); {
			n := min(int64(bs), e.End()-off)
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
