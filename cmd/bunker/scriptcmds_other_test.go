//go:build !unix

package main

import (
	"io/fs"
	"os"
	"time"
)

// lchtimes sets the access and modification times of path (of a symlink's
// target: this system has no call for the link itself).
func lchtimes(path string, t time.Time) error { return os.Chtimes(path, t, t) }

// inode reports one link: hard links are not compared on this system.
func inode(fi fs.FileInfo) (ino, nlink uint64) { return 0, 1 }

// allocated reports the size: sparseness is not measured on this system.
func allocated(fi fs.FileInfo) int64 { return fi.Size() }
