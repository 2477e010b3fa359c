package vhd

import (
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// BenchmarkReadAt reads a 128 MiB disk holding 96 MiB of data in 1 MiB
// pieces, as a backup does.
func BenchmarkReadAt(b *testing.B) {
	imgtest.BenchQemuImage(b, "vpc", ".vhd", func(p string) (vmdisk.Image, error) { return Open(p, vmdisk.OpenOptions{}) })
}
