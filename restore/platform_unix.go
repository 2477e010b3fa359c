//go:build unix

package restore

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/repo"
)

const oNoFollow = unix.O_NOFOLLOW

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }

func mknod(path string, char bool, rdev uint64) error {
	mode := uint32(unix.S_IFBLK)
	if char {
		mode = unix.S_IFCHR
	}
	return mknodDev(path, mode|0o600, rdev)
}

// deviceNumber returns the device number of a device node.
func deviceNumber(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Rdev), true
}

// setTimes sets the access and modification times of path, not following
// a symlink. A zero access time is taken as the modification time.
func setTimes(path string, n *repo.Node) error {
	if n.ModTime.IsZero() {
		return nil
	}
	atime := n.AccessTime
	if atime.IsZero() {
		atime = n.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(n.ModTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "set times", Path: path, Err: err}
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	return unix.NsecToTimespec(t.UnixNano())
}
