package fsread

import (
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"sort"
	"sync"

	ext4log "github.com/masahiro331/go-ext4-filesystem/log"
	xfslog "github.com/masahiro331/go-xfs-filesystem/log"
	"github.com/masahiro331/go-xfs-filesystem/xfs"
	"go.uber.org/zap"
)

// quietLibs silences the masahiro331 libraries, which log to stderr at
// debug level by default; a library must not print.
var quietLibs = sync.OnceFunc(func() {
	nop := zap.NewNop().Sugar()
	ext4log.SetLogger(nop)
	xfslog.SetLogger(nop)
})

type xfsFS struct {
	r    io.ReaderAt
	size int64
	lib  *xfs.FileSystem
	bs   int64
}

func openXFS(r io.ReaderAt, size int64) (*xfsFS, error) {
	quietLibs()
	lib, err := xfs.NewFS(*io.NewSectionReader(r, 0, size), nil)
	if err != nil {
		return nil, err
	}
	sb := lib.PrimaryAG.SuperBlock
	bs := int64(sb.BlockSize)
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("block size %d: %w", bs, ErrCorrupt)
	}
	return &xfsFS{r: r, size: size, lib: lib, bs: bs}, nil
}

func (x *xfsFS) foldCase() bool { return false }

func (x *xfsFS) node(info fs.FileInfo, name string) *node {
	n := &node{name: name, mode: info.Mode(), size: info.Size(), mtime: info.ModTime(), id: info}
	if n.mode.IsDir() {
		n.size = 0
	}
	return n
}

func (x *xfsFS) root() (*node, error) {
	info, err := x.lib.ReadDirInfo("/")
	if err != nil {
		return nil, err
	}
	return x.node(info, "."), nil
}

func (x *xfsFS) list(dir *node, p string) ([]*node, error) {
	des, err := x.lib.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := make([]*node, 0, len(des))
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, x.node(info, de.Name()))
	}
	return out, nil
}

// content maps the file through the extent records the library decoded
// with its inode (unexported, hence reflection): the library's own reader
// re-reads the parent directory for every file and keeps a map entry per
// block.
func (x *xfsFS) content(n *node, p string) (io.ReaderAt, error) {
	inode, err := xfsInode(n.id)
	if err != nil {
		return nil, err
	}
	var recs reflect.Value
	for _, fork := range []string{"regularExtent", "regularBtree"} {
		if f := inode.FieldByName(fork); f.IsValid() && f.Kind() == reflect.Pointer && !f.IsNil() {
			recs = f.Elem().FieldByName("bmbtRecs")
		}
	}
	if !recs.IsValid() || recs.Kind() != reflect.Slice {
		if n.size == 0 {
			return &extReader{e: &extFS{r: x.r, size: x.size, bs: x.bs}}, nil
		}
		return nil, fmt.Errorf("file without an extent list: %w", ErrUnsupported)
	}
	sb := x.lib.PrimaryAG.SuperBlock
	blocks := x.size / x.bs
	var exts []extExtent
	for i := range recs.Len() {
		r := recs.Index(i)
		if r.Kind() != reflect.Struct || r.NumField() != 2 {
			return nil, fmt.Errorf("XFS library extent record %v", r.Type())
		}
		irec := xfs.BmbtRec{L0: r.Field(0).Uint(), L1: r.Field(1).Uint()}.Unpack()
		e := extExtent{
			lblk:      int64(irec.StartOff),
			pblk:      sb.BlockToPhysicalOffset(irec.StartBlock),
			len:       int64(irec.BlockCount),
			unwritten: irec.State != 0,
		}
		if e.len == 0 {
			continue
		}
		if e.pblk < 0 || e.pblk+e.len > blocks || e.lblk < 0 {
			return nil, fmt.Errorf("extent of %d blocks at block %d outside the file system: %w", e.len, e.pblk, ErrCorrupt)
		}
		exts = append(exts, e)
	}
	sort.Slice(exts, func(i, j int) bool { return exts[i].lblk < exts[j].lblk })
	for i := 1; i < len(exts); i++ {
		if exts[i-1].lblk+exts[i-1].len > exts[i].lblk {
			return nil, fmt.Errorf("overlapping extents at block %d: %w", exts[i].lblk, ErrCorrupt)
		}
	}
	return &extReader{e: &extFS{r: x.r, size: x.size, bs: x.bs}, exts: exts}, nil
}

// xfsInode returns the library's inode behind a FileInfo it made.
func xfsInode(info any) (reflect.Value, error) {
	v := reflect.ValueOf(info)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("XFS library file info %T", info)
	}
	inode := v.FieldByName("inode")
	if !inode.IsValid() || inode.Kind() != reflect.Pointer || inode.IsNil() {
		return reflect.Value{}, fmt.Errorf("XFS library file info %T has no inode", info)
	}
	return inode.Elem(), nil
}

// readlink reads the target of a symlink kept in the inode (the only kind
// the library decodes), by reflection: the library does not export it.
func (x *xfsFS) readlink(n *node, p string) (string, error) {
	inode, err := xfsInode(n.id)
	if err != nil {
		return "", err
	}
	sl := inode.FieldByName("symlinkString")
	if !sl.IsValid() || sl.Kind() != reflect.Pointer || sl.IsNil() {
		return "", fmt.Errorf("symbolic link stored in extents: %w", ErrUnsupported)
	}
	return sl.Elem().FieldByName("Name").String(), nil
}
