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

// content maps the file's blocks through the library's block table
// (logical block -> physical block; unwritten extents left out), read by
// reflection because the library only offers a sequential reader.
func (x *xfsFS) content(n *node, p string) (io.ReaderAt, error) {
	f, err := x.lib.Open(p)
	if err != nil {
		return nil, err
	}
	v := reflect.ValueOf(f)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	table := v.FieldByName("table")
	if !table.IsValid() || table.Kind() != reflect.Map {
		return nil, fmt.Errorf("XFS library file %T has no block table", f)
	}
	blocks := (x.size + x.bs - 1) / x.bs
	var exts []extExtent
	it := table.MapRange()
	for it.Next() {
		l, ph := it.Key().Int(), it.Value().Int()
		if l < 0 || ph < 0 || ph >= blocks {
			return nil, fmt.Errorf("block %d of the file at block %d outside the file system: %w", l, ph, ErrCorrupt)
		}
		exts = append(exts, extExtent{lblk: l, pblk: ph, len: 1})
	}
	sort.Slice(exts, func(i, j int) bool { return exts[i].lblk < exts[j].lblk })
	merged := exts[:0]
	for _, e := range exts {
		if k := len(merged) - 1; k >= 0 && merged[k].lblk+merged[k].len == e.lblk && merged[k].pblk+merged[k].len == e.pblk {
			merged[k].len++
			continue
		}
		merged = append(merged, e)
	}
	return &extReader{e: &extFS{r: x.r, size: x.size, bs: x.bs}, exts: merged}, nil
}

// readlink reads the target of a symlink kept in the inode (the only kind
// the library decodes), by reflection: the library does not export it.
func (x *xfsFS) readlink(n *node, p string) (string, error) {
	v := reflect.ValueOf(n.id)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return "", fmt.Errorf("XFS library file info %T", n.id)
	}
	inode := v.FieldByName("inode")
	if !inode.IsValid() || inode.Kind() != reflect.Pointer || inode.IsNil() {
		return "", fmt.Errorf("XFS library file info %T has no inode", n.id)
	}
	s := inode.Elem().FieldByName("symlinkString")
	if !s.IsValid() || s.Kind() != reflect.Pointer || s.IsNil() {
		return "", fmt.Errorf("symbolic link stored in extents: %w", ErrUnsupported)
	}
	return s.Elem().FieldByName("Name").String(), nil
}
