package vhd

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// TestQemuLock: an image a QEMU process has open for writing is in use.
func TestQemuLock(t *testing.T) {
	needQemu(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("qemu-io not installed")
		}
		t.Fatal("qemu-io not installed (required in CI)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	makeRaw(t, src, 20<<20, 9)
	p := filepath.Join(dir, "locked.vhd")
	qemu(t, "convert", "-f", "raw", "-O", "vpc", src, p)
	// qemu-io opens the image read-write and holds its locks while it sleeps.
	cmd := exec.Command("qemu-io", "-f", "vpc", "-c", "sleep 20000", p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var err error
	for range 100 {
		var img *Image
		img, err = Open(p, vmdisk.OpenOptions{})
		if err != nil {
			break
		}
		img.Close()
		time.Sleep(50 * time.Millisecond)
	}
	if !errors.Is(err, vmdisk.ErrInUse) || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("got %v, want ErrInUse for the qemu lock", err)
	}
	img, err := Open(p, vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if !img.Info().InUse {
		t.Fatal("InUse not set")
	}
}
