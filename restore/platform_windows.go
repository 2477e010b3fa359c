package restore

import (
	"errors"
	"io/fs"
	"os"

	"github.com/bunkerbackup/bunker/repo"
)

const oNoFollow = 0

var errSpecialFiles = errors.New("FIFOs and device nodes cannot be created on Windows")

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
