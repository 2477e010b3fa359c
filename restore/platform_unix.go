//go:build unix

package restore

import (
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/repo"
)

// createFile creates a new regular file for writing, failing if anything
// exists at path. It opens the file with open(2) and wraps the descriptor
// with os.NewFile rather than calling os.OpenFile, which tries to register
// every file with the network poller (an epoll_ctl and four fcntl calls per
// file, all useless for a regular file).
func createFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

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
