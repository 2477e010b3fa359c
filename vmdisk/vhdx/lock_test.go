package vhdx

import (
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// TestQemuLock: an image a QEMU process has open for writing is in use.
func TestQemuLock(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	imgtest.ScatteredRaw(t, src, 20<<20, 9)
	p := filepath.Join(dir, "locked.vhdx")
	imgtest.Convert(t, src, "raw", p, "vhdx")
	imgtest.QemuLock(t, "vhdx", p, "lock", func(o vmdisk.OpenOptions) (vmdisk.Image, error) { return Open(p, o) })
}
