//go:build linux

package raw

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

func TestInUseLock(t *testing.T) {
	dir := t.TempDir()
	src := imgtest.GPTDisk(t, dir, "disk.raw", 24<<20)
	// Hold a QEMU-style write-permission lock through another open file
	// description.
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK, Start: 101, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(src, vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrInUse) {
		t.Fatalf("Open = %v, want ErrInUse", err)
	}
	img, err := Open(src, vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if info := img.Info(); !info.InUse || len(info.Reasons) != 1 || !strings.Contains(info.Reasons[0], "QEMU") {
		t.Fatalf("Info = %+v", info)
	}
	img.Close()
	f.Close()
	img, err = Open(src, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	img.Close()
}

// TestInUseQemu keeps the image open in a real qemu-io process.
func TestInUseQemu(t *testing.T) {
	dir := t.TempDir()
	src := imgtest.GPTDisk(t, dir, "disk.raw", 24<<20)
	stop := imgtest.HoldOpen(t, "raw", src)
	open := func(o vmdisk.OpenOptions) (vmdisk.Image, error) { return Open(src, o) }
	if err := imgtest.WaitInUse(t, open); !errors.Is(err, vmdisk.ErrInUse) {
		t.Fatalf("got %v, want ErrInUse", err)
	}
	stop()
	img, err := Open(src, vmdisk.OpenOptions{})
	if err != nil {
		t.Fatalf("after qemu-io exited: %v", err)
	}
	img.Close()
}

// loopDevice attaches a loop device over a new file of size bytes.
func loopDevice(t *testing.T, size int64) (dev, backing string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("loop devices need root, and CI is set")
		}
		t.Skip("loop devices need root")
	}
	imgtest.Need(t, "losetup")
	backing = filepath.Join(t.TempDir(), "backing.img")
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	// Non-zero garbage so that missing zeroing shows.
	garbage := []byte(strings.Repeat("GARBAGE!", 8192))
	for off := int64(0); off < size; off += int64(len(garbage)) {
		f.WriteAt(garbage[:min(int64(len(garbage)), size-off)], off)
	}
	f.Close()
	out, err := exec.Command("losetup", "-f", "--show", backing).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("losetup: %v %s", err, out)
		}
		t.Fatalf("losetup: %v %s", err, out)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, backing
}

func TestDevice(t *testing.T) {
	dir := t.TempDir()
	src := imgtest.GPTDisk(t, dir, "disk.raw", 24<<20)
	dev, backing := loopDevice(t, 28<<20)
	if ok, err := IsBlockDevice(dev); !ok || err != nil {
		t.Fatalf("IsBlockDevice(%s) = %v, %v", dev, ok, err)
	}
	if ok, _ := IsBlockDevice(src); ok {
		t.Fatal("regular file reported as a device")
	}
	for _, assumeZeroed := range []bool{false, true} {
		if assumeZeroed {
			// Zero the device first, as --assume-zeroed promises.
			if err := os.Truncate(backing, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(backing, 28<<20); err != nil {
				t.Fatal(err)
			}
		}
		img, err := Open(src, vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := OpenDevice(dev, img.Size(), assumeZeroed)
		if err != nil {
			t.Fatal(err)
		}
		// A second exclusive open must fail while the writer holds it.
		if _, err := OpenDevice(dev, img.Size(), false); !errors.Is(err, ErrDeviceBusy) || !errors.Is(err, vmdisk.ErrInUse) {
			t.Fatalf("second OpenDevice = %v", err)
		}
		copyImage(t, img, w, 1<<20)
		if _, err := w.WriteAt([]byte{1}, 0); err == nil {
			t.Fatal("descending write accepted")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		img.Close()
		// The device now starts with the disk; compare through the reader.
		d, err := vmdisk.Open(dev, "", vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info := d.Info(); info.Format != "device" || d.Size() != 28<<20 || d.SectorSize() != 512 {
			t.Fatalf("device info %+v size %d sector %d", info, d.Size(), d.SectorSize())
		}
		if ext, err := d.Extents(); err != nil || len(ext) != 1 || ext[0].Length != 28<<20 {
			t.Fatalf("device extents %v, %v", ext, err)
		}
		trimmed := filepath.Join(dir, "trimmed.raw")
		got := make([]byte, 24<<20)
		if _, err := d.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if err := os.WriteFile(trimmed, got, 0o600); err != nil {
			t.Fatal(err)
		}
		imgtest.Compare(t, src, "raw", trimmed)
	}
	// A device held exclusively (as a mount holds it) is in use for
	// reading too.
	holder, err := os.OpenFile(dev, os.O_RDONLY|unix.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vmdisk.Open(dev, "", vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrInUse) {
		t.Fatalf("Open of a held device = %v", err)
	}
	d, err := vmdisk.Open(dev, "device", vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if info := d.Info(); !info.InUse || !strings.Contains(info.Reasons[0], "mounted or in use") {
		t.Fatalf("Info = %+v", info)
	}
	d.Close()
	holder.Close()
	if _, err := OpenDevice(dev, 29<<20, false); err == nil || !strings.Contains(err.Error(), "smaller") {
		t.Fatalf("OpenDevice on a small device = %v", err)
	}
	if _, err := OpenDevice(src, 1, false); err == nil {
		t.Fatal("OpenDevice on a regular file accepted")
	}
}
