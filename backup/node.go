package backup

import (
	"io/fs"

	"github.com/bunkerbackup/bunker/repo"
)

// portableNode records what every platform's fs.FileInfo offers: name,
// type, permission bits, size and mtime. Platform files add the rest.
func portableNode(name string, fi fs.FileInfo) *repo.Node {
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
	return n
}
