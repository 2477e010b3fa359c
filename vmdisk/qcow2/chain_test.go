package qcow2_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	_ "github.com/bunkerbackup/bunker/vmdisk/all"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// TestRawBacking reads a qcow2 overlay whose backing file is a raw image,
// opened through the registry.
func TestRawBacking(t *testing.T) {
	imgtest.Need(t, "qemu-img")
	imgtest.Need(t, "qemu-io")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	data := bytes.Repeat([]byte("raw base data.\n"), 4<<20/15)
	if err := os.WriteFile(base, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(base, 8<<20); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlay.qcow2")
	imgtest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay)
	imgtest.Run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x61 1M 64k", "-c", "write -z 2M 64k", overlay)
	flat := filepath.Join(dir, "flat.raw")
	imgtest.Convert(t, overlay, "qcow2", flat, "raw")

	img, err := vmdisk.Open(overlay, "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if files := img.Info().Files; len(files) != 2 || files[1] != base {
		t.Fatalf("files %v", files)
	}
	imgtest.CheckRaw(t, img, flat, img.Size())
	got, _ := io.ReadAll(io.NewSectionReader(img, 2<<20, 64<<10))
	if !bytes.Equal(got, make([]byte, 64<<10)) {
		t.Fatal("zero cluster does not hide the raw base")
	}
}
