package vhd

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// BenchmarkReadAt reads a 128 MiB disk holding 96 MiB of data in 1 MiB
// pieces, as a backup does.
func BenchmarkReadAt(b *testing.B) {
	needQemu(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "disk.raw")
	data := make([]byte, 128<<20)
	rand.Read(data[16<<20 : 112<<20])
	os.WriteFile(src, data, 0o644)
	p := filepath.Join(dir, "bench.vhd")
	qemu(b, "convert", "-f", "raw", "-O", "vpc", src, p)
	img, err := Open(p, vmdisk.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(img.Size())
	b.ResetTimer()
	for range b.N {
		for off := int64(0); off < img.Size(); off += int64(len(buf)) {
			if _, err := img.ReadAt(buf, off); err != nil && off+int64(len(buf)) < img.Size() {
				b.Fatal(err)
			}
		}
	}
}
