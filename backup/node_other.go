//go:build !linux

package backup

import (
	"io/fs"
	"os"

	"github.com/bunkerbackup/bunker/repo"
)

// nodeFromInfo builds the node of the file at full from its lstat result.
// Outside Linux only what fs.FileInfo portably offers is recorded: type,
// permissions, size, mtime and link targets.
func (w *walker) nodeFromInfo(name, full string, fi fs.FileInfo) (*repo.Node, error) {
	n := &repo.Node{
		Name:    name,
		Mode:    fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
		ModTime: fi.ModTime(),
	}
	switch t := fi.Mode().Type(); {
	case t == 0:
		n.Type = repo.NodeFile
		n.Size = uint64(fi.Size())
	case t&fs.ModeDir != 0:
		n.Type = repo.NodeDir
	case t&fs.ModeSymlink != 0:
		n.Type = repo.NodeSymlink
		target, err := os.Readlink(full)
		n.LinkTarget = target
		if err != nil {
			return n, err
		}
	case t&fs.ModeNamedPipe != 0:
		n.Type = repo.NodeFIFO
	case t&fs.ModeSocket != 0:
		n.Type = repo.NodeSocket
	case t&fs.ModeCharDevice != 0:
		n.Type = repo.NodeCharDev
	case t&fs.ModeDevice != 0:
		n.Type = repo.NodeBlockDev
	default:
		n.Type = repo.NodeFile
	}
	return n, nil
}

func openFile(path string) (*os.File, error) { return os.Open(path) }

func dataRanges(f *os.File, fi fs.FileInfo) ([][2]int64, bool) { return nil, false }

func sameFile(a, b fs.FileInfo) bool { return os.SameFile(a, b) }

func deviceOf(fi fs.FileInfo) uint64 { return 0 }

func inodeOf(fi fs.FileInfo) uint64 { return 0 }
