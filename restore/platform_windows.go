package restore

import (
	"errors"
	"io/fs"
	"os"

	"github.com/bunkerbackup/bunker/repo"
)

var errSpecialFiles = errors.New("FIFOs and device nodes cannot be created on Windows")

// createFile creates a new regular file for writing, failing if anything
// exists at path.
func createFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

func mkfifo(path string) error { return errSpecialFiles }

func mknod(path string, char bool, rdev uint64) error { return errSpecialFiles }

func deviceNumber(fi fs.FileInfo) (uint64, bool) { return 0, false }

// setTimes sets the times of path; symlinks are followed on Windows.
func setTimes(path string, n *repo.Node) error {
	if n.ModTime.IsZero() {
		return nil
	}
	atime := n.AccessTime
	if atime.IsZero() {
		atime = n.ModTime
	}
	return os.Chtimes(path, atime, n.ModTime)
}
