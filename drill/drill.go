package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
)

// Repo is the part of a repository a drill reads from; *repo.Repository
// implements it.
type Repo interface {
	restore.Repo
	// BlobID computes the repository's keyed blob id of plaintext.
	BlobID(data []byte) repo.ID
}

// Options tune a drill. The zero value restores into a new directory under
// os.TempDir, writes disks as sparse raw files only and removes everything
// afterwards.
type Options struct {
	// Scratch is the directory in which the drill makes its own new
	// subdirectory (created if missing); "" means os.TempDir().
	Scratch string
	// Keep leaves the restored copy in place; Report.Dir names it.
	Keep bool
	// Format is "vmdk" or "vhd" to also write every disk into that
	// container and verify it; "" or "raw" writes sparse raw files only.
	// The format must be registered with vmdisk.
	Format string
	// Workers is the number of blob loaders and file verifiers; 0 means
	// GOMAXPROCS.
	Workers int
	// Progress receives progress; nil is a no-op.
	Progress Progress
	// FreeSpace returns the bytes available in a directory (-1: unknown,
	// no check); nil uses statfs.
	FreeSpace func(dir string) (int64, error)
}

// Progress receives drill progress: Phase when an item's restore or
// verification starts, then the restore.Progress counts of that phase.
type Progress interface {
	// Phase names the item ("files", "disk:NAME", "disk:NAME (vmdk)")
	// and the phase ("restore" or "verify").
	Phase(item, phase string)
	restore.Progress
}

// Item is the result of restoring and verifying one part of a snapshot:
// its file tree, or one disk in one container format.
type Item struct {
	Name     string        // "files", "disk:NAME", or "disk:NAME (vmdk)"
	Format   string        // "" for files; raw, vmdk or vhd for disks
	Path     string        // the restored copy in the scratch directory
	Size     int64         // disks: the virtual size; files: content bytes, holes included
	Bytes    int64         // data bytes restored (holes excluded)
	Files    uint64        // regular files restored
	Verified uint64        // files verified, or 1 for a verified disk
	Digest   string        // disks: the whole-disk digest, hex
	Restore  time.Duration // time taken to restore
	Verify   time.Duration // time taken to verify
	Failures []string      // what failed; empty when the item verified
	// Container is set on the second item of a disk, its copy in
	// Options.Format: the same data restored once more, which the
	// report's totals do not count again.
	Container bool
}

// OK reports whether the item was restored and verified without failure.
func (it *Item) OK() bool { return len(it.Failures) == 0 }

// Report is the result of a drill.
type Report struct {
	Snapshot repo.ID
	Start    time.Time // when the drill started
	Dir      string    // the scratch copy; it no longer exists unless Kept
	Kept     bool
	Items    []Item

	// The totals count the file tree and each disk once: a disk's
	// Container item is not added to them.
	Bytes   int64         // data bytes restored
	Files   uint64        // regular files restored
	Disks   int           // disks of the snapshot
	Restore time.Duration // sum of the items' restore times
	Verify  time.Duration // sum of the items' verify times
	Total   time.Duration // the whole drill, planning and cleanup included

	SpaceNeeded int64 // the free space the drill required
	SpaceFree   int64 // free space found (-1: unknown)
}

// OK reports whether every item was restored and verified.
func (r *Report) OK() bool {
	for i := range r.Items {
		if !r.Items[i].OK() {
			return false
		}
	}
	return true
}

// Failures lists every failure as "ITEM: what failed".
func (r *Report) Failures() []string {
	var out []string
	for _, it := range r.Items {
		for _, f := range it.Failures {
			out = append(out, it.Name+": "+f)
		}
	}
	return out
}

type driller struct {
	r    Repo
	sn   *repo.Snapshot
	opts Options
	prog Progress
	dir  string
}

// Run restores the snapshot sn into a new directory under opts.Scratch,
// verifies it and returns the report. Item failures are in the report; the
// error is set only when the drill could not run: not enough free space
// (*SpaceError), a scratch directory that cannot be made, a repository
// error while planning, or cancellation.
func Run(ctx context.Context, r Repo, sn *repo.Snapshot, opts Options) (Report, error) {
	start := time.Now()
	rep := Report{Snapshot: sn.ID, Start: start, Disks: len(sn.Disks), Kept: opts.Keep}
	switch opts.Format {
	case "raw":
		opts.Format = ""
	case "", "vmdk", "vhd":
	default:
		return rep, fmt.Errorf("drill: unknown container format %q (want raw, vmdk or vhd)", opts.Format)
	}
	if sn.Tree == nil && len(sn.Disks) == 0 {
		return rep, fmt.Errorf("drill: snapshot %s holds neither files nor disks", sn.ID.Str())
	}
	parent := opts.Scratch
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return rep, fmt.Errorf("create scratch directory: %w", err)
	}
	need, err := plan(ctx, r, sn, opts)
	if err != nil {
		return rep, err
	}
	rep.SpaceNeeded = need
	free := freeSpace
	if opts.FreeSpace != nil {
		free = opts.FreeSpace
	}
	if rep.SpaceFree, err = free(parent); err != nil {
		return rep, fmt.Errorf("free space of %s: %w", parent, err)
	}
	if rep.SpaceFree >= 0 && need > rep.SpaceFree {
		return rep, &SpaceError{Dir: parent, Need: need, Free: rep.SpaceFree}
	}
	dir, err := os.MkdirTemp(parent, "bunker-drill-"+sn.ID.Str()+"-")
	if err != nil {
		return rep, fmt.Errorf("create scratch directory: %w", err)
	}
	rep.Dir = dir
	d := &driller{r: r, sn: sn, opts: opts, prog: opts.Progress, dir: dir}
	if d.prog == nil {
		d.prog = noProgress{}
	}
	err = d.run(ctx, &rep)
	if !opts.Keep {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove scratch directory: %w", rerr)
		}
	}
	for _, it := range rep.Items {
		if it.Container {
			continue
		}
		rep.Bytes += it.Bytes
		rep.Files += it.Files
		rep.Restore += it.Restore
		rep.Verify += it.Verify
	}
	rep.Total = time.Since(start)
	return rep, err
}

func (d *driller) run(ctx context.Context, rep *Report) error {
	if d.sn.Tree != nil {
		it, err := d.files(ctx)
		if err != nil {
			return err
		}
		rep.Items = append(rep.Items, it)
	}
	for i := range d.sn.Disks {
		formats := []string{"raw"}
		if d.opts.Format != "" {
			formats = append(formats, d.opts.Format)
		}
		for _, f := range formats {
			it, err := d.disk(ctx, &d.sn.Disks[i], f)
			if err != nil {
				return err
			}
			rep.Items = append(rep.Items, it)
		}
	}
	return nil
}

// plan returns the free space the drill needs: all items when they are
// kept, else the largest (each item is removed once verified).
func plan(ctx context.Context, r Repo, sn *repo.Snapshot, opts Options) (int64, error) {
	var sizes []int64
	if sn.Tree != nil {
		s, _, _, err := treeSpace(ctx, r, *sn.Tree)
		if err != nil {
			return 0, fmt.Errorf("drill: %w", err)
		}
		sizes = append(sizes, s)
	}
	for i := range sn.Disks {
		d := &sn.Disks[i]
		c, err := containerSpace(ctx, r, d, opts.Format)
		if err != nil {
			return 0, fmt.Errorf("drill: %w", err)
		}
		sizes = append(sizes, rawDiskSpace(d), c)
	}
	var sum, largest int64
	for _, s := range sizes {
		sum += s
		largest = max(largest, s)
	}
	if opts.Keep {
		return sum, nil
	}
	return largest, nil
}

// failure renders a restore failure, and reports whether the drill must
// stop (cancellation).
func failure(ctx context.Context, what string, err error) (string, error) {
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	var inc *restore.IncompleteError
	if errors.As(err, &inc) {
		return "", nil // the failures are listed one by one
	}
	return what + ": " + err.Error(), nil
}

// fileName makes a disk name usable as a file name.
func fileName(name string) string {
	name = strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c == 0 {
			return '_'
		}
		return c
	}, name)
	if name == "" || name == "." || name == ".." {
		name = "_" + name
	}
	return name
}

func (d *driller) itemPath(name string) string { return filepath.Join(d.dir, name) }

type noProgress struct{}

func (noProgress) Phase(string, string) {}
func (noProgress) Total(int64, int64)   {}
func (noProgress) Done(int64, int64)    {}
