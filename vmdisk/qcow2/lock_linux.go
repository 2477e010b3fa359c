package qcow2

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// qemu expresses the permissions it holds on an image as OFD locks on
// single bytes: byte 100+n is read-locked while a qemu process holds
// permission n, byte 200+n while it refuses to share it (block/file-posix.c,
// RAW_LOCK_PERM_BASE and RAW_LOCK_SHARED_BASE). Permission 1 is "write".
const qemuWritePermByte = 100 + 1

// writeLockHolder reports, as an in-use reason, whether another process
// (qemu) holds the write permission lock on f. It returns "" when not.
func writeLockHolder(f *os.File) (string, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: qemuWritePermByte, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.ENOSYS) {
			return "", nil // file system without OFD locks
		}
		return "", err
	}
	if lk.Type == unix.F_UNLCK {
		return "", nil
	}
	return "qemu holds the write lock on the image (a running VM or qemu-img/qemu-io has it open for writing)", nil
}
