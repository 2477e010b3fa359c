//go:build linux

// Package lockcheck tells whether another process holds a disk image open
// for writing, as far as byte-range locks show it.
//
// QEMU (since 2.10) takes open file description (OFD) locks on every image
// file it opens: a shared lock on byte 100+n for each permission n it holds
// and on byte 200+n for each permission it does not share with others. The
// write permission is bit 1, so a running VM with a writable disk holds a
// lock on byte 101. Other tools may take an ordinary write lock on the file.
// Check tests for both without taking any lock itself.
package lockcheck

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// QEMU's lock byte layout (block/file-posix.c).
const (
	qemuPermBase  = 100
	qemuPermWrite = 1 // BLK_PERM_WRITE is 1<<1
)

// Check returns a human-readable reason when f is locked for writing by
// another open file description, and "" when it is not. Filesystems
// without lock support report nothing.
func Check(f *os.File) (string, error) {
	fd := int(f.Fd())
	// Any lock on QEMU's write-permission byte means a QEMU process has the
	// image open with write permission.
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: qemuPermBase + qemuPermWrite, Len: 1}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
		if err == unix.EINVAL || err == unix.ENOLCK || err == unix.EOPNOTSUPP {
			return "", nil
		}
		return "", fmt.Errorf("test lock on %s: %w", f.Name(), err)
	}
	if lk.Type != unix.F_UNLCK {
		return "QEMU holds it open for writing (lock on byte 101)", nil
	}
	// A read-lock probe over the whole file conflicts only with write locks.
	lk = unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
		return "", fmt.Errorf("test lock on %s: %w", f.Name(), err)
	}
	if lk.Type != unix.F_UNLCK {
		if lk.Pid > 0 {
			return fmt.Sprintf("process %d holds a write lock on it", lk.Pid), nil
		}
		return "another process holds a write lock on it", nil
	}
	return "", nil
}
