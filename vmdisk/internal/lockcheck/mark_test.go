//go:build linux

package lockcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"golang.org/x/sys/unix"
)

// TestMark takes QEMU's write-permission lock through a second open file
// description, as a running VM does, and checks what Mark makes of it.
func TestMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var info vmdisk.Info
	if err := Mark(f, path, false, &info); err != nil || info.InUse || len(info.Reasons) != 0 {
		t.Fatalf("unlocked: %v, %+v", err, info)
	}

	holder, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	lk := unix.Flock_t{Type: unix.F_RDLCK, Start: qemuPermBase + qemuPermWrite, Len: 1}
	if err := unix.FcntlFlock(holder.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no OFD locks, and CI is set: %v", err)
		}
		t.Skipf("no OFD locks here: %v", err)
	}
	err = Mark(f, path, false, &info)
	if !errors.Is(err, vmdisk.ErrInUse) || !strings.Contains(err.Error(), "QEMU") || info.InUse {
		t.Fatalf("locked: %v, %+v", err, info)
	}
	if err := Mark(f, path, true, &info); err != nil {
		t.Fatal(err)
	}
	if !info.InUse || len(info.Reasons) != 1 || !strings.HasPrefix(info.Reasons[0], path+": QEMU") {
		t.Fatalf("forced: %+v", info)
	}
}
