package fsread

import (
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	ntfs "www.velocidex.com/golang/go-ntfs/parser"
)

const (
	ntfsRootMFT = 5
	// ntfsFirstUserMFT: records below it are the volume's metafiles
	// ($MFT, $LogFile, $Bitmap, ...), hidden from listings.
	ntfsFirstUserMFT = 16
)

type ntfsFS struct {
	ctx  *ntfs.NTFSContext
	size int64
}

func openNTFS(r io.ReaderAt, size int64) (*ntfsFS, error) {
	paged, err := ntfs.NewPagedReader(io.NewSectionReader(r, 0, size), 4096, 1024)
	if err != nil {
		return nil, err
	}
	ctx, err := ntfs.GetNTFSContext(paged, 0)
	if err != nil {
		return nil, err
	}
	return &ntfsFS{ctx: ctx, size: size}, nil
}

func (n *ntfsFS) foldCase() bool { return true }

func (n *ntfsFS) root() (*node, error) {
	mft, err := n.ctx.GetMFT(ntfsRootMFT)
	if err != nil {
		return nil, err
	}
	rt := &node{name: ".", mode: fs.ModeDir | 0o755, id: int64(ntfsRootMFT)}
	for _, info := range ntfs.Stat(n.ctx, mft) {
		if info.IsDir {
			rt.mtime = info.Mtime
			break
		}
	}
	return rt, nil
}

func ntfsMFTIndex(id string) (int64, error) {
	head, _, _ := strings.Cut(id, "-")
	return strconv.ParseInt(head, 10, 64)
}

func (n *ntfsFS) list(dir *node, p string) ([]*node, error) {
	mft, err := n.ctx.GetMFT(dir.id.(int64))
	if err != nil {
		return nil, err
	}
	// The library walks an index allocation in 4 KiB steps up to its
	// recorded size, without a bound.
	for _, attr := range mft.EnumerateAttributes(n.ctx) {
		if attr.Type().Value == ntfs.ATTR_TYPE_INDEX_ALLOCATION {
			if sz := int64(attr.DataSize()); sz < 0 || sz > n.size {
				return nil, fmt.Errorf("index of %d bytes in a %d-byte volume: %w", sz, n.size, ErrCorrupt)
			}
		}
	}
	var out []*node
	for _, info := range ntfs.ListDir(n.ctx, mft) {
		// Alternate data streams come as "name:stream"; Win32 names
		// cannot hold a colon.
		if info.Name == "" || info.Name == "." || info.Name == ".." || strings.Contains(info.Name, ":") {
			continue
		}
		idx, err := ntfsMFTIndex(info.MFTId)
		if err != nil {
			return nil, fmt.Errorf("entry %q: MFT id %q: %w", info.Name, info.MFTId, ErrCorrupt)
		}
		if idx < ntfsFirstUserMFT && strings.HasPrefix(info.Name, "$") {
			continue
		}
		e := &node{name: info.Name, mode: 0o644, size: info.Size, mtime: info.Mtime, id: idx}
		if info.IsDir {
			e.mode, e.size = fs.ModeDir|0o755, 0
		}
		out = append(out, e)
	}
	return out, nil
}

func (n *ntfsFS) content(nd *node, p string) (io.ReaderAt, error) {
	mft, err := n.ctx.GetMFT(nd.id.(int64))
	if err != nil {
		return nil, err
	}
	// The unnamed $DATA stream is the file's content.
	r, err := ntfs.OpenStream(n.ctx, mft, ntfs.ATTR_TYPE_DATA, ntfs.WILDCARD_STREAM_ID, "")
	if err != nil {
		return nil, fmt.Errorf("open $DATA: %w", err)
	}
	return r, nil
}

func (n *ntfsFS) readlink(nd *node, p string) (string, error) {
	return "", fs.ErrInvalid
}
