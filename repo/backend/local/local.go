// Package local stores a repository in a directory of the local file system.
//
// Layout: config at the top, keys/, snapshots/, index/, locks/, protect/,
// history/ and data/xx/ where xx are the first two hex digits of a pack's
// name. Every Save writes a
// temporary file next to its destination, fsyncs it, renames it into place and
// fsyncs the directory, so a crash leaves either the old state or the whole
// new file, never a partial one.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// tempPrefix starts the names of temporary files; List skips them.
const tempPrefix = ".tmp-"

// Backend is a repository in a local directory.
//
// It keeps a few pack files open between loads (a restore reads many blobs
// from each pack); Close closes them. A cached file is checked on every load
// with the fstat the load needs anyway: a pack removed or replaced since it
// was opened (its link count is zero) is opened again by name, so a load
// never sees a file that is gone.
type Backend struct {
	dir string

	mu    sync.Mutex
	open  map[string]*openFile // pack name -> open file
	clock uint64               // for least-recently-used eviction
}

// openFile is a cached open pack file. refs counts the loads using it; the
// file is closed when it has been evicted and the last load is done.
type openFile struct {
	f       *os.File
	refs    int
	used    uint64
	evicted bool
}

// maxOpenPacks bounds the pack files kept open.
const maxOpenPacks = 32

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.TempCleaner = (*Backend)(nil)
)

// New returns a backend for the directory dir. The directory need not exist
// yet: it (and its subdirectories) are created by the first Save.
func New(dir string) *Backend {
	return &Backend{dir: filepath.Clean(dir)}
}

// Location returns the directory.
func (b *Backend) Location() string { return b.dir }

// Path returns the file system path of h.
func (b *Backend) Path(h backend.Handle) string {
	return filepath.Join(b.dir, filepath.FromSlash(h.Path()))
}

func checkHandle(h backend.Handle) error {
	if h.Type == backend.ConfigFile {
		return nil
	}
	if h.Name == "" || h.Name == "." || h.Name == ".." || strings.ContainsAny(h.Name, `/\`) || strings.HasPrefix(h.Name, tempPrefix) {
		return fmt.Errorf("invalid file name %q", h.Name)
	}
	switch h.Type {
	case backend.KeyFile, backend.SnapshotFile, backend.IndexFile, backend.PackFile, backend.LockFile, backend.ProtectFile, backend.HistoryFile:
		return nil
	}
	return fmt.Errorf("invalid file type %q", h.Type)
}

// describe turns the errors a full or read-only file system produces into a
// message that says what happened and where.
func describe(op, path string, err error) error {
	// Name the final path once, with the bare errno: the temporary file's
	// name in the underlying PathError means nothing to the user.
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS, syscall.EDQUOT} {
		if errors.Is(err, errno) {
			return fmt.Errorf("%s %s: %w", op, path, errno)
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// The PathError already names the path.
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

// Save writes data to h atomically and durably.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkHandle(h); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	path := b.Path(h)
	dir := filepath.Dir(path)
	f, tmp, err := createTemp(dir, filepath.Base(path))
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return describe("save", path, err)
		}
		// Make the new directories durable: each one's entry lives in its
		// parent, up to the repository root (data/ and data/xx may both
		// be new).
		root := filepath.Clean(b.dir)
		for d := dir; ; d = filepath.Dir(d) {
			parent := filepath.Dir(d)
			if err = syncDir(parent); err != nil {
				return describe("save", path, err)
			}
			if parent == root || parent == d {
				break
			}
		}
		f, tmp, err = createTemp(dir, filepath.Base(path))
	}
	if err != nil {
		return describe("save", path, err)
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return describe("save", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return describe("save", path, err)
	}
	if err := ctx.Err(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return describe("save", path, err)
	}
	if err := syncDir(dir); err != nil {
		return describe("save", path, err)
	}
	return nil
}

func createTemp(dir, base string) (*os.File, string, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, "", err
	}
	tmp := filepath.Join(dir, tempPrefix+base+"-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	return f, tmp, err
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync directories; that is not a failure of
	// the save.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// Load returns length bytes of h from offset; length 0 reads to the end.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) ([]byte, error) {
	var buf []byte
	err := b.load(ctx, h, offset, length, func(n int64) []byte {
		buf = make([]byte, n)
		return buf
	})
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// LoadInto reads len(buf) bytes of h from offset into buf, which must not
// be empty. It is Load without allocating: the repository reads blobs into
// recycled buffers with it.
func (b *Backend) LoadInto(ctx context.Context, h backend.Handle, offset int64, buf []byte) error {
	if len(buf) == 0 {
		return fmt.Errorf("load %s: empty buffer", b.Path(h))
	}
	return b.load(ctx, h, offset, int64(len(buf)), func(int64) []byte { return buf })
}

// load reads length bytes (0: to the end) of h from offset into the buffer
// that alloc returns for the length.
func (b *Backend) load(ctx context.Context, h backend.Handle, offset, length int64, alloc func(int64) []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkHandle(h); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if offset < 0 || length < 0 {
		return fmt.Errorf("load %s: invalid range offset %d length %d", b.Path(h), offset, length)
	}
	path := b.Path(h)
	f, release, err := b.openFile(h, path)
	if err != nil {
		return describe("load", path, err)
	}
	defer func() { release() }()
	fi, err := f.Stat()
	if err != nil {
		return describe("load", path, err)
	}
	if unlinked(fi) {
		// The cached file was removed or replaced since it was opened.
		release()
		b.forget(h.Name, f)
		f2, release2, err := b.openFile(h, path)
		if err != nil {
			return describe("load", path, err)
		}
		f, release = f2, release2
		if fi, err = f.Stat(); err != nil {
			return describe("load", path, err)
		}
	}
	size := fi.Size()
	if length == 0 {
		length = size - offset
	}
	if offset > size || length < 0 || offset+length > size {
		return fmt.Errorf("load %s: range %d+%d beyond end of file (size %d): %w", path, offset, length, size, io.ErrUnexpectedEOF)
	}
	buf := alloc(length)
	if _, err := f.ReadAt(buf, offset); err != nil {
		return describe("load", path, err)
	}
	return nil
}

// openFile returns h opened for reading and a function to call when done
// with it (at most once; calling it again does nothing). Pack files come
// from the cache of open files; others are opened for this load only. On
// Windows, where an open file cannot be removed or replaced, nothing is
// cached.
func (b *Backend) openFile(h backend.Handle, path string) (*os.File, func(), error) {
	if h.Type != backend.PackFile || runtime.GOOS == "windows" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		return f, once(func() { f.Close() }), nil
	}
	b.mu.Lock()
	of := b.open[h.Name]
	if of == nil {
		b.mu.Unlock()
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		b.mu.Lock()
		if of = b.open[h.Name]; of != nil {
			// Opened concurrently by another load: use that one.
			f.Close()
		} else {
			of = &openFile{f: f}
			if b.open == nil {
				b.open = make(map[string]*openFile)
			}
			if len(b.open) >= maxOpenPacks {
				b.evictLocked()
			}
			b.open[h.Name] = of
		}
	}
	of.refs++
	b.clock++
	of.used = b.clock
	b.mu.Unlock()
	return of.f, once(func() { b.unref(of) }), nil
}

func once(fn func()) func() {
	var o sync.Once
	return func() { o.Do(fn) }
}

func (b *Backend) unref(of *openFile) {
	b.mu.Lock()
	of.refs--
	closeIt := of.refs == 0 && of.evicted
	b.mu.Unlock()
	if closeIt {
		of.f.Close()
	}
}

// evictLocked drops the least recently used open file; b.mu is held.
func (b *Backend) evictLocked() {
	var oldest string
	var oldestUsed uint64
	for name, of := range b.open {
		if oldest == "" || of.used < oldestUsed {
			oldest, oldestUsed = name, of.used
		}
	}
	if oldest != "" {
		b.dropLocked(oldest)
	}
}

// dropLocked removes name from the cache, closing its file unless a load
// still uses it; b.mu is held.
func (b *Backend) dropLocked(name string) {
	of := b.open[name]
	if of == nil {
		return
	}
	delete(b.open, name)
	of.evicted = true
	if of.refs == 0 {
		of.f.Close()
	}
}

// forget drops the cached file f of name, if it is still the cached one.
func (b *Backend) forget(name string, f *os.File) {
	b.mu.Lock()
	if of := b.open[name]; of != nil && of.f == f {
		b.dropLocked(name)
	}
	b.mu.Unlock()
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, err
	}
	if err := checkHandle(h); err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	fi, err := os.Stat(b.Path(h))
	if err != nil {
		return backend.FileInfo{}, describe("stat", b.Path(h), err)
	}
	return backend.FileInfo{Name: h.Name, Size: fi.Size()}, nil
}

// List calls fn for every file of type t, skipping temporary files.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.ConfigFile {
		fi, err := os.Stat(b.Path(backend.Handle{Type: t}))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return describe("list", b.dir, err)
		}
		return fn(backend.FileInfo{Name: "", Size: fi.Size()})
	}
	if err := checkHandle(backend.Handle{Type: t, Name: "x"}); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	dir := filepath.Join(b.dir, t.Dir())
	if t != backend.PackFile {
		return listDir(ctx, dir, fn)
	}
	subdirs, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return describe("list", dir, err)
	}
	for _, sd := range subdirs {
		if !sd.IsDir() {
			continue
		}
		if err := listDir(ctx, filepath.Join(dir, sd.Name()), fn); err != nil {
			return err
		}
	}
	return nil
}

func listDir(ctx context.Context, dir string, fn func(backend.FileInfo) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return describe("list", dir, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while listing
		}
		if err != nil {
			return describe("list", dir, err)
		}
		if err := fn(backend.FileInfo{Name: e.Name(), Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkHandle(h); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	path := b.Path(h)
	if h.Type == backend.PackFile {
		b.mu.Lock()
		b.dropLocked(h.Name)
		b.mu.Unlock()
	}
	if err := os.Remove(path); err != nil {
		return describe("remove", path, err)
	}
	// A removal is durable before the caller goes on: prune removes
	// snapshots before the packs they used, and that order must survive a
	// crash.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return describe("remove", path, err)
	}
	return nil
}

// ListTemp calls fn for every temporary file below the repository
// directory: files a process killed while saving left behind, and files of
// saves in progress.
func (b *Backend) ListTemp(ctx context.Context, fn func(backend.TempFile) error) error {
	// WalkDir does not follow a root that is a symbolic link (a repository
	// at /backup -> /mnt/disk/backup): walk the directory it points to.
	root := b.dir
	if dir, err := filepath.EvalSymlinks(root); err == nil {
		root = dir
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed into place meanwhile
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return fn(backend.TempFile{Path: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil && ctx.Err() == nil {
		return describe("list temporary files in", b.dir, err)
	}
	return err
}

// RemoveTemp deletes a temporary file ListTemp reported.
func (b *Backend) RemoveTemp(ctx context.Context, f backend.TempFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rel := filepath.FromSlash(f.Path)
	if !filepath.IsLocal(rel) || !strings.HasPrefix(filepath.Base(rel), tempPrefix) {
		return fmt.Errorf("remove temporary file: invalid name %q", f.Path)
	}
	path := filepath.Join(b.dir, rel)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return describe("remove", path, err)
	}
	return nil
}

// Close closes the pack files kept open. The backend stays usable: later
// loads open files again.
func (b *Backend) Close() error {
	b.mu.Lock()
	for name := range b.open {
		b.dropLocked(name)
	}
	b.mu.Unlock()
	return nil
}
