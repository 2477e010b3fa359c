package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk/fsread"
)

// restorePartitionFiles copies files out of the file system of a disk's
// partition into the target directory: PATH in the file system becomes
// TARGET/PATH. Regular files, directories and symlinks are restored with
// their permissions and mtimes; other kinds are skipped with a warning.
func (g *globalOptions) restorePartitionFiles(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, o restoreOptions) error {
	d, err := findDisk(sn, o.disk.name)
	if err != nil {
		return err
	}
	fsys, err := openPartitionFS(ctx, r, d, o.disk.partition)
	if err != nil {
		return err
	}
	start := time.Now()
	c := &fsCopier{g: g, fsys: fsys, target: o.target}
	roots := o.include
	if len(roots) == 0 {
		roots = []string{"/"}
	}
	for _, root := range roots {
		if err := c.copyTree(ctx, fsRel(path.Clean("/"+root))); err != nil {
			return err
		}
	}
	c.finishDirs()
	what := fmt.Sprintf("disk:%s:p%d", d.Name, o.disk.partition)
	if g.JSON {
		g.out.jsonLine(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "source": what,
			"files_restored": c.files, "dirs_restored": c.dirs, "symlinks": c.links, "files_failed": c.failed,
			"bytes_restored": c.bytes, "total_duration": time.Since(start).Seconds()})
	} else {
		g.out.printf("restored files of %s of snapshot %s to %s: %s, %s, %s, %s in %s\n", what, sn.ID.Str(), o.target,
			count(c.files, "file"), count(c.dirs, "dir"), count(c.links, "symlink"), humanize.IBytes(c.bytes), time.Since(start).Round(time.Millisecond))
	}
	if c.failed > 0 {
		return fmt.Errorf("could not restore %d item%s of %s", c.failed, plural(c.failed), what)
	}
	return nil
}

type fsCopier struct {
	g      *globalOptions
	fsys   *fsread.FS
	target string

	dirTimes                   []dirTime
	files, dirs, links, failed int
	bytes                      uint64
}

type dirTime struct {
	path string
	mode fs.FileMode
	mt   time.Time
}

func (c *fsCopier) copyTree(ctx context.Context, root string) error {
	return fs.WalkDir(c.fsys, root, func(name string, de fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err == nil {
			err = c.copyOne(name)
		}
		if err != nil {
			if name == root && errors.Is(err, fs.ErrNotExist) {
				return withHint(fmt.Errorf("%s: %w", path.Join("/", name), err), "list the partition's files with 'bunker ls SNAP disk:NAME:pN'")
			}
			c.failed++
			c.g.out.warn("restore", path.Join("/", name), err)
			if de != nil && de.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
}

func (c *fsCopier) copyOne(name string) error {
	fi, err := c.fsys.Lstat(name)
	if err != nil {
		return err
	}
	dst := filepath.Join(c.target, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	perm := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	switch {
	case fi.IsDir():
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		c.dirs++
		c.dirTimes = append(c.dirTimes, dirTime{dst, perm, fi.ModTime()})
		return nil
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := c.fsys.ReadLink(name)
		if err != nil {
			return err
		}
		os.Remove(dst)
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
		c.links++
		return nil
	case fi.Mode().IsRegular():
		return c.copyFile(name, dst, perm, fi.ModTime())
	}
	return fmt.Errorf("skipped: a %s is not restored from a partition", fi.Mode().Type())
}

func (c *fsCopier) copyFile(name, dst string, perm fs.FileMode, mt time.Time) error {
	in, err := c.fsys.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, perm)
	}
	if err == nil {
		err = os.Chtimes(dst, mt, mt)
	}
	if err != nil {
		return err
	}
	c.files++
	c.bytes += uint64(n)
	return nil
}

// finishDirs sets directory permissions and times after their content.
func (c *fsCopier) finishDirs() {
	for i := len(c.dirTimes) - 1; i >= 0; i-- {
		dt := c.dirTimes[i]
		if err := os.Chmod(dt.path, dt.mode); err != nil {
			c.g.out.warn("restore", dt.path, err)
		}
		if err := os.Chtimes(dt.path, dt.mt, dt.mt); err != nil {
			c.g.out.warn("restore", dt.path, err)
		}
	}
}
