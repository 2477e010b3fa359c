package imgtest

import (
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// Opener opens the image under test with the given options.
type Opener func(vmdisk.OpenOptions) (vmdisk.Image, error)

// HoldOpen starts a qemu-io process that keeps image (qemu format name)
// open read-write, holding QEMU's locks, until the returned stop is
// called or the test ends.
func HoldOpen(t testing.TB, format, image string) (stop func()) {
	t.Helper()
	Need(t, "qemu-io")
	cmd := exec.Command("qemu-io", "-f", format, "-c", "sleep 20000", image)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

// WaitInUse opens the image until open fails, as it does once the process
// started by [HoldOpen] holds its locks, and returns that error. It fails
// the test when open keeps succeeding for 10 seconds.
func WaitInUse(t testing.TB, open Opener) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		img, err := open(vmdisk.OpenOptions{})
		if err != nil {
			return err
		}
		img.Close()
		if time.Now().After(deadline) {
			t.Fatal("qemu-io's lock never seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// QemuLock checks that an image a QEMU process holds open for writing is
// in use: open fails with an error that wraps [vmdisk.ErrInUse] and
// contains reason, and opens with Force, reporting InUse. It returns the
// Info of the forced image.
func QemuLock(t testing.TB, format, image, reason string, open Opener) vmdisk.Info {
	t.Helper()
	HoldOpen(t, format, image)
	if err := WaitInUse(t, open); !errors.Is(err, vmdisk.ErrInUse) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("got %v, want ErrInUse for the qemu lock", err)
	}
	img, err := open(vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	info := img.Info()
	if !info.InUse {
		t.Fatal("InUse not set")
	}
	return info
}
