package all_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	_ "github.com/bunkerbackup/bunker/vmdisk/all"
)

func TestAllFormatsRegistered(t *testing.T) {
	got := vmdisk.Formats()
	for _, want := range []string{"vmdk", "vhd", "vhdx", "qcow2", "device", "raw"} {
		if !slices.Contains(got, want) {
			t.Errorf("format %q not registered; have %v", want, got)
		}
	}
	if got[len(got)-1] != "raw" {
		t.Errorf("raw must be probed last, order is %v", got)
	}
}

// A file whose name promises a container format but whose content has no
// valid signature is refused instead of being read as a raw disk; naming
// the format raw reads its bytes.
func TestDamagedContainerNotReadAsRaw(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"disk.qcow2", "disk.vmdk", "disk.VHD", "disk.vhdx"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, append([]byte("QFI\xf9"), make([]byte, 1<<20)...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := vmdisk.Open(p, "", vmdisk.OpenOptions{})
		if !errors.Is(err, vmdisk.ErrUnknownFormat) || !strings.Contains(err.Error(), "the name says") {
			t.Errorf("%s: err = %v", name, err)
		}
		img, err := vmdisk.Open(p, "raw", vmdisk.OpenOptions{})
		if err != nil {
			t.Fatalf("%s with format raw: %v", name, err)
		}
		if img.Size() != 1<<20+4 {
			t.Errorf("%s: size %d", name, img.Size())
		}
		img.Close()
	}
	p := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := vmdisk.Open(p, "", vmdisk.OpenOptions{})
	if err != nil || img.Info().Format != "raw" {
		t.Fatalf("plain raw image: %v", err)
	}
	img.Close()
}
