package fsread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// Overwrite replaces existing files and links; without it an existing
	// one is an error wrapping fs.ErrExist. Existing directories are
	// merged into either way.
	Overwrite bool
	// Owners applies the Unix owners the file system records (ext2/3/4);
	// it needs the privilege to chown.
	Owners bool
	// Progress, when not nil, is told about each file, directory or link
	// written (its path in the file system) and the bytes of content.
	Progress func(name string, bytes int64)
}

// ExtractStats count what Extract wrote.
type ExtractStats struct {
	Files, Dirs, Links int
	// Skipped counts devices, FIFOs and sockets, which are not created.
	Skipped int
	// Bytes is the content of the files written (holes included).
	Bytes int64
}

// extractBlock is the unit in which runs of zeros become holes.
const extractBlock = 4096

// Extract copies the file, link or directory tree name of fsys to the
// local directory target, keeping its path: name "etc/ssh" is written to
// target/etc/ssh (name "." copies the whole file system into target).
// Files are written sparse (zero blocks become holes), with their
// permission bits and modification times; directories get their times
// after their content. Symbolic links are
// recreated as they are stored, never followed; hard links become
// separate copies.
func Extract(ctx context.Context, fsys *FS, name, target string, opts ExtractOptions) (ExtractStats, error) {
	var st ExtractStats
	if !fs.ValidPath(name) {
		return st, &fs.PathError{Op: "extract", Path: name, Err: fs.ErrInvalid}
	}
	// The target and the parent directories of name are made as plain
	// directories.
	if err := os.MkdirAll(filepath.Join(target, filepath.FromSlash(path.Dir(name))), 0o755); err != nil {
		return st, fmt.Errorf("extract %s: %w", name, err)
	}
	info, err := fsys.Lstat(name)
	if err != nil {
		return st, err
	}
	buf := make([]byte, 1<<20)
	err = extract(ctx, fsys, name, info, filepath.Join(target, filepath.FromSlash(name)), opts, &st, buf)
	return st, err
}

func extract(ctx context.Context, fsys *FS, name string, info fs.FileInfo, dst string, opts ExtractOptions, st *ExtractStats, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mode := info.Mode()
	switch {
	case mode.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("extract %s: %w", name, err)
		}
		entries, err := fsys.ReadDir(name)
		if err != nil {
			return err
		}
		for _, e := range entries {
			child := path.Join(name, e.Name())
			ci, err := e.Info()
			if err != nil {
				return err
			}
			if err := extract(ctx, fsys, child, ci, filepath.Join(dst, e.Name()), opts, st, buf); err != nil {
				return err
			}
		}
		st.Dirs++
	case mode&fs.ModeSymlink != 0:
		target, err := fsys.ReadLink(name)
		if err != nil {
			return err
		}
		if err := clearPath(dst, opts.Overwrite); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
		if err := os.Symlink(target, dst); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
		st.Links++
		if err := applyOwner(dst, info, opts, true); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
		if opts.Progress != nil {
			opts.Progress(name, 0)
		}
		return nil
	case mode.IsRegular():
		if err := extractFile(ctx, fsys, name, dst, info.Size(), opts.Overwrite, buf); err != nil {
			return err
		}
		st.Files++
		st.Bytes += info.Size()
	default:
		st.Skipped++
		return nil
	}
	if err := applyOwner(dst, info, opts, false); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	if err := os.Chmod(dst, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	mt := info.ModTime()
	if err := os.Chtimes(dst, time.Time{}, mt); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	if opts.Progress != nil {
		opts.Progress(name, max(info.Size(), 0))
	}
	return nil
}

// clearPath removes what is at dst (not a directory) when overwrite is
// set, and otherwise fails if something is there.
func clearPath(dst string, overwrite bool) error {
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if !overwrite {
		return fmt.Errorf("%s: %w", dst, fs.ErrExist)
	}
	return os.Remove(dst)
}

func applyOwner(dst string, info fs.FileInfo, opts ExtractOptions, link bool) error {
	o, ok := info.Sys().(*Owner)
	if !opts.Owners || !ok {
		return nil
	}
	if link {
		return os.Lchown(dst, int(o.UID), int(o.GID))
	}
	return os.Chown(dst, int(o.UID), int(o.GID))
}

// extractFile writes the size bytes of file name to dst, leaving holes
// where whole blocks are zero.
func extractFile(ctx context.Context, fsys *FS, name, dst string, size int64, overwrite bool, buf []byte) (err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return fmt.Errorf("extract %s: file has no ReadAt", name)
	}
	if err := clearPath(dst, overwrite); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("extract %s: %w", name, cerr)
		}
	}()
	var zero [extractBlock]byte
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), size-off))
		k, err := ra.ReadAt(buf[:n], off)
		if k < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		for i := 0; i < n; i += extractBlock {
			b := buf[i:min(i+extractBlock, n)]
			if bytes.Equal(b, zero[:len(b)]) {
				continue
			}
			if _, err := out.WriteAt(b, off+int64(i)); err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
		}
		off += int64(n)
	}
	if err := out.Truncate(size); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	return nil
}
