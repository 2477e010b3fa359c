package fsread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnsupported is returned by Open for a file system type without a
// driver.
var ErrUnsupported = errors.New("unsupported file system")

// ErrCorrupt is wrapped by errors about on-disk structures that make no
// sense (and by panics inside the file-system libraries).
var ErrCorrupt = errors.New("corrupt file system")

// ErrNotDir is returned when a path walks through something that is not a
// directory, or ReadDir is called on a file.
var ErrNotDir = errors.New("not a directory")

// ErrNotRegular is returned by Read on a device, FIFO, socket or other file
// without byte content.
var ErrNotRegular = errors.New("not a regular file")

// maxLinkHops bounds symbolic link resolution, as Linux does (ELOOP).
const maxLinkHops = 40

// Types returns the file system types Open accepts.
func Types() []string {
	return []string{"ext2", "ext3", "ext4", "fat12", "fat16", "fat32", "vfat", "ntfs", "xfs"}
}

// Supported reports whether Open has a driver for fstype.
func Supported(fstype string) bool { return slices.Contains(Types(), fstype) }

// FS is a read-only file system inside a partition.
type FS struct {
	typ string
	mu  sync.Mutex // serialises every call into drv
	drv driver
	rt  *node

	cache dirCache
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// node is one file as a driver describes it.
type node struct {
	name  string
	mode  fs.FileMode
	size  int64
	mtime time.Time
	id    any // the driver's handle (inode number, MFT index, path)
	sys   any // what FileInfo.Sys returns
}

// Owner is what a FileInfo's Sys method returns on file systems that
// record Unix ownership (ext2/3/4); elsewhere Sys returns nil.
type Owner struct {
	UID, GID uint32
}

// driver is one file-system implementation. Its methods are called with
// FS.mu held and with panics recovered. p is the node's path without
// symbolic links ("." for the root).
type driver interface {
	root() (*node, error)
	list(dir *node, p string) ([]*node, error)
	// content returns a reader over the bytes of the regular file n.
	content(n *node, p string) (io.ReaderAt, error)
	readlink(n *node, p string) (string, error)
	// foldCase reports case-insensitive name lookup (FAT, NTFS).
	foldCase() bool
}

// Open opens the file system of type fstype (as vmdisk/part names it) in
// the size bytes of r.
func Open(r io.ReaderAt, size int64, fstype string) (f *FS, err error) {
	defer recoverErr(&err, "open "+fstype+" file system")
	r = newPageCache(r, size)
	var d driver
	switch fstype {
	case "ext2", "ext3", "ext4":
		d, err = openExt(r, size)
	case "fat12", "fat16", "fat32", "vfat":
		d, err = openFAT(r, size, fstype)
	case "ntfs":
		d, err = openNTFS(r, size)
	case "xfs":
		d, err = openXFS(r, size)
	default:
		return nil, fmt.Errorf("open %q file system: %w", fstype, ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s file system: %w", fstype, err)
	}
	rt, err := d.root()
	if err != nil {
		return nil, fmt.Errorf("open %s file system: read root directory: %w", fstype, err)
	}
	if !rt.mode.IsDir() {
		return nil, fmt.Errorf("open %s file system: root is not a directory: %w", fstype, ErrCorrupt)
	}
	rt.name = "."
	return &FS{typ: fstype, drv: d, rt: rt, cache: dirCache{m: map[string][]*node{}}}, nil
}

// Type returns the file system type the FS was opened with.
func (f *FS) Type() string { return f.typ }

// Warnings describe conditions that did not prevent opening the file
// system but may make what it shows differ from what the running system
// saw, such as an ext3/4 journal that was not replayed.
func (f *FS) Warnings() []string {
	if w, ok := f.drv.(interface{ warnings() []string }); ok {
		return w.warnings()
	}
	return nil
}

// recoverErr turns a panic into an error wrapping ErrCorrupt, naming the
// function that panicked.
func recoverErr(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %w: panic in %s: %v", what, ErrCorrupt, panicSite(), r)
	}
}

// panicSite returns the innermost function outside the runtime on the
// panicking goroutine's stack, called from a deferred function.
func panicSite() string {
	pc := make([]uintptr, 32)
	frames := runtime.CallersFrames(pc[:runtime.Callers(3, pc)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s (%s:%d)", f.Function, path.Base(f.File), f.Line)
		}
		if !more {
			return "unknown function"
		}
	}
}

// call runs fn under the lock with panics recovered.
func (f *FS) call(fn func() error) (err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer recoverErr(&err, f.typ)
	return fn()
}

// dirCache keeps the listings of recently read directories, by path, so
// that opening the files of one directory one by one reads it once.
type dirCache struct {
	m     map[string][]*node
	order []string
}

const dirCacheSize = 64

// list returns the entries of dir (at path p), sorted by name.
func (f *FS) list(dir *node, p string) ([]*node, error) {
	if es, ok := f.cache.m[p]; ok {
		return es, nil
	}
	es, err := f.drv.list(dir, p)
	if err != nil {
		return nil, err
	}
	// A damaged directory can hold names no path can reach (and that
	// would escape a restore target); they are left out.
	es = slices.DeleteFunc(es, func(n *node) bool {
		return n.name == "" || n.name == "." || n.name == ".." || strings.ContainsAny(n.name, "/\x00")
	})
	slices.SortFunc(es, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	es = slices.CompactFunc(es, func(a, b *node) bool { return a.name == b.name })
	if len(f.cache.order) >= dirCacheSize {
		delete(f.cache.m, f.cache.order[0])
		f.cache.order = f.cache.order[1:]
	}
	f.cache.m[p] = es
	f.cache.order = append(f.cache.order, p)
	return es, nil
}

// lookup finds name in the directory dir at path p.
func (f *FS) lookup(dir *node, p, name string) (*node, error) {
	es, err := f.list(dir, p)
	if err != nil {
		return nil, err
	}
	if i, ok := slices.BinarySearchFunc(es, name, func(n *node, s string) int { return strings.Compare(n.name, s) }); ok {
		return es[i], nil
	}
	if f.drv.foldCase() {
		for _, n := range es {
			if strings.EqualFold(n.name, name) {
				return n, nil
			}
		}
	}
	return nil, fs.ErrNotExist
}

// resolve walks name from the root. Symbolic links met on the way are
// followed; the last element is followed when follow is set. It returns the
// node and its path without links. Called with f.mu held.
func (f *FS) resolve(name string, follow bool) (*node, string, error) {
	if !fs.ValidPath(name) {
		return nil, "", fs.ErrInvalid
	}
	type step struct {
		n *node
		p string
	}
	stack := []step{{f.rt, "."}}
	var pending []string
	if name != "." {
		pending = strings.Split(name, "/")
	}
	hops := 0
	for len(pending) > 0 {
		elem := pending[0]
		pending = pending[1:]
		cur := stack[len(stack)-1]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if !cur.n.mode.IsDir() {
			return nil, "", ErrNotDir
		}
		child, err := f.lookup(cur.n, cur.p, elem)
		if err != nil {
			return nil, "", err
		}
		childPath := path.Join(cur.p, child.name)
		if child.mode&fs.ModeSymlink != 0 && (len(pending) > 0 || follow) {
			if hops++; hops > maxLinkHops {
				return nil, "", errors.New("too many levels of symbolic links")
			}
			target, err := f.drv.readlink(child, childPath)
			if err != nil {
				return nil, "", fmt.Errorf("read link %s: %w", childPath, err)
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		stack = append(stack, step{child, childPath})
	}
	top := stack[len(stack)-1]
	return top.n, top.p, nil
}

// Open opens the named file or directory, following symbolic links.
func (f *FS) Open(name string) (fs.File, error) {
	var n *node
	var p string
	var ra io.ReaderAt
	err := f.call(func() (err error) {
		if n, p, err = f.resolve(name, true); err != nil {
			return err
		}
		if n.mode.IsRegular() {
			ra, err = f.drv.content(n, p)
		}
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &File{fs: f, n: n, name: name, path: p, ra: ra}, nil
}

// Stat describes the named file, following symbolic links.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	return f.stat("stat", name, true)
}

// Lstat describes the named file; a symbolic link is described itself.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	return f.stat("lstat", name, false)
}

func (f *FS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	var n *node
	err := f.call(func() (err error) {
		n, _, err = f.resolve(name, follow)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return fileInfo{n}, nil
}

// ReadLink returns the target of the symbolic link name, as stored.
func (f *FS) ReadLink(name string) (string, error) {
	var target string
	err := f.call(func() error {
		n, p, err := f.resolve(name, false)
		if err != nil {
			return err
		}
		if n.mode&fs.ModeSymlink == 0 {
			return fs.ErrInvalid
		}
		target, err = f.drv.readlink(n, p)
		return err
	})
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return target, nil
}

// ReadDir lists the named directory, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	var es []*node
	err := f.call(func() error {
		n, p, err := f.resolve(name, true)
		if err != nil {
			return err
		}
		if !n.mode.IsDir() {
			return ErrNotDir
		}
		es, err = f.list(n, p)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(es))
	for i, n := range es {
		out[i] = fileInfo{n}
	}
	return out, nil
}

// fileInfo is both the fs.FileInfo and the fs.DirEntry of a node.
type fileInfo struct{ n *node }

func (i fileInfo) Name() string               { return i.n.name }
func (i fileInfo) Size() int64                { return i.n.size }
func (i fileInfo) Mode() fs.FileMode          { return i.n.mode }
func (i fileInfo) ModTime() time.Time         { return i.n.mtime }
func (i fileInfo) IsDir() bool                { return i.n.mode.IsDir() }
func (i fileInfo) Sys() any                   { return i.n.sys }
func (i fileInfo) Type() fs.FileMode          { return i.n.mode.Type() }
func (i fileInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i fileInfo) String() string             { return fs.FormatFileInfo(i) }

// File is an open file or directory of an FS. Regular files implement
// io.ReaderAt and io.Seeker; directories implement fs.ReadDirFile.
type File struct {
	fs   *FS
	n    *node
	name string // as passed to Open
	path string // without symbolic links
	ra   io.ReaderAt

	mu     sync.Mutex
	off    int64
	dir    []fs.DirEntry
	dirOff int
	dirErr error
	listed bool
	closed bool
}

var (
	_ fs.ReadDirFile = (*File)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.Seeker      = (*File)(nil)
)

func (fl *File) pathErr(op string, err error) error {
	return &fs.PathError{Op: op, Path: fl.name, Err: err}
}

// Stat describes the file.
func (fl *File) Stat() (fs.FileInfo, error) { return fileInfo{fl.n}, nil }

// Close releases nothing but marks the file closed.
func (fl *File) Close() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return fl.pathErr("close", fs.ErrClosed)
	}
	fl.closed = true
	return nil
}

// ReadAt reads len(p) bytes at off of a regular file.
func (fl *File) ReadAt(p []byte, off int64) (int, error) {
	fl.mu.Lock()
	closed := fl.closed
	fl.mu.Unlock()
	if closed {
		return 0, fl.pathErr("read", fs.ErrClosed)
	}
	return fl.readAt(p, off)
}

func (fl *File) readAt(p []byte, off int64) (n int, err error) {
	switch {
	case fl.n.mode.IsDir():
		return 0, fl.pathErr("read", errors.New("is a directory"))
	case fl.ra == nil:
		return 0, fl.pathErr("read", ErrNotRegular)
	case off < 0:
		return 0, fl.pathErr("read", errors.New("negative offset"))
	case off >= fl.n.size:
		return 0, io.EOF
	}
	want := len(p)
	if rest := fl.n.size - off; int64(want) > rest {
		want = int(rest)
	}
	err = fl.fs.call(func() error {
		k, err := fl.ra.ReadAt(p[:want], off)
		n = k
		if err == io.EOF && k == want {
			err = nil
		}
		return err
	})
	if err == nil && n < want {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, fl.pathErr("read", err)
	}
	if want < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read reads from the current offset.
func (fl *File) Read(p []byte) (int, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return 0, fl.pathErr("read", fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := fl.readAt(p, fl.off)
	fl.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset for the next Read.
func (fl *File) Seek(offset int64, whence int) (int64, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return 0, fl.pathErr("seek", fs.ErrClosed)
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += fl.n.size
	default:
		return 0, fl.pathErr("seek", errors.New("invalid whence"))
	}
	if offset < 0 {
		return 0, fl.pathErr("seek", errors.New("negative offset"))
	}
	fl.off = offset
	return offset, nil
}

// ReadDir reads the directory's entries, n at a time when n > 0.
func (fl *File) ReadDir(n int) ([]fs.DirEntry, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return nil, fl.pathErr("readdir", fs.ErrClosed)
	}
	if !fl.n.mode.IsDir() {
		return nil, fl.pathErr("readdir", ErrNotDir)
	}
	if !fl.listed {
		fl.listed = true
		var es []*node
		fl.dirErr = fl.fs.call(func() (err error) {
			es, err = fl.fs.list(fl.n, fl.path)
			return err
		})
		for _, e := range es {
			fl.dir = append(fl.dir, fileInfo{e})
		}
	}
	if fl.dirErr != nil {
		return nil, fl.pathErr("readdir", fl.dirErr)
	}
	rest := fl.dir[fl.dirOff:]
	if n <= 0 {
		fl.dirOff = len(fl.dir)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	fl.dirOff += len(rest)
	return rest, nil
}
