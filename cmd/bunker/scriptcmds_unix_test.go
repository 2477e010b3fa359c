//go:build unix

package main

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lchtimes sets the access and modification times of path, not following
// a symlink.
func lchtimes(path string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// inode returns the inode number and link count of fi.
func inode(fi fs.FileInfo) (ino, nlink uint64) {
	st := fi.Sys().(*syscall.Stat_t)
	return uint64(st.Ino), uint64(st.Nlink)
}

// allocated returns the bytes the file system allocated for fi.
func allocated(fi fs.FileInfo) int64 {
	return int64(fi.Sys().(*syscall.Stat_t).Blocks) * 512
}
