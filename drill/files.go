package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
)

// files restores the snapshot's file tree into the scratch directory and
// verifies it.
func (d *driller) files(ctx context.Context) (Item, error) {
	it := Item{Name: "files", Path: d.itemPath("files")}
	var mu sync.Mutex
	failed := make(map[string]bool) // snapshot paths that could not be restored
	d.prog.Phase(it.Name, "restore")
	start := time.Now()
	st, err := restore.Files(ctx, d.r, d.sn, it.Path, restore.FileOptions{
		Workers: d.opts.Workers,
		OnError: func(p string, err error) error {
			mu.Lock()
			defer mu.Unlock()
			failed[p] = true
			it.Failures = append(it.Failures, fmt.Sprintf("restore %s: %v", p, err))
			return nil
		},
		Progress: d.prog,
	})
	it.Restore = time.Since(start)
	it.Files, it.Bytes = st.Files, int64(st.Bytes)
	if err != nil {
		msg, ferr := failure(ctx, "restore", err)
		if ferr != nil {
			return it, ferr
		}
		if msg != "" {
			it.Failures = append(it.Failures, msg)
		}
	}

	d.prog.Phase(it.Name, "verify")
	start = time.Now()
	v := &verifier{r: d.r, prog: d.prog, skip: failed}
	err = v.run(ctx, *d.sn.Tree, it.Path, d.opts.Workers)
	it.Verify = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return it, ctx.Err()
		}
		it.Failures = append(it.Failures, "verify: "+err.Error())
	}
	it.Size, it.Verified = v.size, v.verified
	it.Failures = append(it.Failures, v.failures...)
	d.remove(it.Path)
	return it, nil
}

// verifier re-reads a restored file tree and compares it with the
// snapshot: every regular file chunk by chunk with its blob id, holes with
// zeros, sizes, symbolic link targets, and the type of every item.
type verifier struct {
	r    Repo
	prog Progress
	skip map[string]bool // failed during the restore: already reported

	mu       sync.Mutex
	failures []string
	verified uint64
	size     int64
}

func (v *verifier) run(ctx context.Context, root repo.ID, dir string, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers + 1) // the walker plus the file readers
	g.Go(func() error { return v.walk(ctx, g, root, "/", dir) })
	return g.Wait()
}

func (v *verifier) fail(p, format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.failures = append(v.failures, "verify "+p+": "+fmt.Sprintf(format, args...))
}

func (v *verifier) skipped(p string) bool {
	for q := p; ; q = path.Dir(q) {
		if v.skip[q] {
			return true
		}
		if q == "/" || q == "." {
			return false
		}
	}
}

func (v *verifier) walk(ctx context.Context, g *errgroup.Group, id repo.ID, dirPath, dir string) error {
	t, err := v.r.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("load tree %s: %w", id.Str(), err)
	}
	var total int64
	for _, n := range t.Nodes {
		if n.Type == repo.NodeFile {
			total += int64(n.Size)
		}
	}
	v.prog.Total(0, total)
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, dst := path.Join(dirPath, n.Name), filepath.Join(dir, n.Name)
		if v.skipped(p) {
			continue
		}
		fi, err := os.Lstat(dst)
		if err != nil {
			if n.Type == repo.NodeCharDev || n.Type == repo.NodeBlockDev || n.Type == repo.NodeSocket {
				continue // created only as root, never for sockets
			}
			v.fail(p, "%v", errors.Unwrap(err))
			continue
		}
		if want := nodeMode(n.Type); fi.Mode().Type() != want {
			v.fail(p, "is a %v, the snapshot has a %s", fi.Mode().Type(), n.Type)
			continue
		}
		switch n.Type {
		case repo.NodeDir:
			if n.Subtree != nil {
				if err := v.walk(ctx, g, *n.Subtree, p, dst); err != nil {
					return err
				}
			}
		case repo.NodeSymlink:
			if target, err := os.Readlink(dst); err != nil || target != n.LinkTarget {
				v.fail(p, "link target %q, the snapshot has %q (%v)", target, n.LinkTarget, err)
			}
		case repo.NodeFile:
			g.Go(func() error { return v.file(ctx, n, p, dst) })
		}
	}
	return nil
}

func nodeMode(t repo.NodeType) fs.FileMode {
	switch t {
	case repo.NodeDir:
		return fs.ModeDir
	case repo.NodeSymlink:
		return fs.ModeSymlink
	case repo.NodeFIFO:
		return fs.ModeNamedPipe
	case repo.NodeCharDev:
		return fs.ModeDevice | fs.ModeCharDevice
	case repo.NodeBlockDev:
		return fs.ModeDevice
	case repo.NodeSocket:
		return fs.ModeSocket
	}
	return 0
}

// file compares one restored file with its content list. A mismatch is
// recorded; only cancellation is returned as an error.
func (v *verifier) file(ctx context.Context, n *repo.Node, p, dst string) error {
	f, err := os.Open(dst)
	if err != nil {
		v.fail(p, "%v", errors.Unwrap(err))
		return nil
	}
	defer f.Close()
	var buf []byte
	var off int64
	for _, c := range n.Content {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.ID == nil {
			if err := v.hole(f, off, int64(c.Len), &buf); err != nil {
				v.fail(p, "%v", err)
				return nil
			}
		} else {
			if uint64(cap(buf)) < c.Len {
				buf = make([]byte, c.Len)
			}
			b := buf[:c.Len]
			if _, err := io.ReadFull(f, b); err != nil {
				v.fail(p, "read at offset %d: %v", off, err)
				return nil
			}
			if v.r.BlobID(b) != *c.ID {
				v.fail(p, "%d bytes at offset %d differ from the snapshot", c.Len, off)
				return nil
			}
		}
		off += int64(c.Len)
		v.prog.Done(0, int64(c.Len))
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		v.fail(p, "longer than the snapshot's %d bytes", off)
		return nil
	}
	v.mu.Lock()
	v.verified++
	v.size += off
	v.mu.Unlock()
	v.prog.Done(1, 0)
	return nil
}

// hole reads length bytes at off of f, which must all be zero.
func (v *verifier) hole(f *os.File, off, length int64, buf *[]byte) error {
	const piece = 1 << 20
	if cap(*buf) < piece {
		*buf = make([]byte, piece)
	}
	for length > 0 {
		b := (*buf)[:min(length, piece)]
		if _, err := io.ReadFull(f, b); err != nil {
			return fmt.Errorf("read at offset %d: %w", off, err)
		}
		for i, c := range b {
			if c != 0 {
				return fmt.Errorf("a hole of the snapshot holds data at offset %d", off+int64(i))
			}
		}
		off += int64(len(b))
		length -= int64(len(b))
	}
	return nil
}
