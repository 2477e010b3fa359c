//go:build !(darwin || freebsd || linux || netbsd)

package backup

import (
	"io/fs"
	"os"

	"github.com/bunkerbackup/bunker/repo"
)

// nodeFromInfo builds the node of the file at full from its lstat result.
// Here only what fs.FileInfo portably offers is recorded: type,
// permissions, size, mtime and link targets.
func (w *walker) nodeFromInfo(name, full string, fi fs.FileInfo) (*repo.Node, error) {
	n := portableNode(name, fi)
	if n.Type == repo.NodeSymlink {
		target, err := os.Readlink(full)
		n.LinkTarget = target
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func openFile(path string) (*os.File, error) { return os.Open(path) }

func dataRanges(f *os.File, fi fs.FileInfo) ([][2]int64, bool) { return nil, false }

func sameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }

func deviceOf(fi fs.FileInfo) uint64 { return 0 }

func inodeOf(fi fs.FileInfo) uint64 { return 0 }
