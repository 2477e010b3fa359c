package imgtest

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// BenchRead measures reading all of img in 1 MiB pieces, as a backup does.
func BenchRead(b *testing.B, img vmdisk.Image) {
	b.Helper()
	buf := make([]byte, 1<<20)
	b.SetBytes(img.Size())
	for b.Loop() {
		for off := int64(0); off < img.Size(); off += int64(len(buf)) {
			if _, err := img.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}

// BenchQemuImage measures reading a 128 MiB disk holding 96 MiB of random
// data that qemu-img converted to format (qemu's name), saved with the
// file name extension ext and opened with open.
func BenchQemuImage(b *testing.B, format, ext string, open func(path string) (vmdisk.Image, error)) {
	b.Helper()
	Need(b, "qemu-img")
	dir := b.TempDir()
	src := filepath.Join(dir, "disk.raw")
	data := make([]byte, 128<<20)
	rand.Read(data[16<<20 : 112<<20])
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "bench"+ext)
	Convert(b, src, "raw", p, format)
	img, err := open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	BenchRead(b, img)
}
