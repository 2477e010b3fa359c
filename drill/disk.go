package drill

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

// disk restores the disk into a new image of the format (raw: a sparse
// file) in the scratch directory, then re-reads and verifies it.
func (d *driller) disk(ctx context.Context, disk *repo.Disk, format string) (Item, error) {
	it := Item{
		Name:   "disk:" + disk.Name,
		Format: format,
		Path:   d.itemPath("disk-" + fileName(disk.Name) + "." + format),
		Size:   disk.Size,
	}
	if format != "raw" {
		it.Name += " (" + format + ")"
		it.Container = true
	}
	var mu sync.Mutex
	var failed []restore.Failure
	opts := restore.DiskOptions{
		Workers: d.opts.Workers,
		BlobID:  d.r.BlobID,
		OnError: func(path string, err error) error {
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, restore.Failure{Path: path, Err: err})
			return nil
		},
		Progress: d.prog,
	}

	d.prog.Phase(it.Name, "restore")
	start := time.Now()
	var w vmdisk.Writer
	var err error
	if format == "raw" {
		w, err = raw.Create(it.Path, disk.Size, "")
	} else {
		w, err = vmdisk.Create(it.Path, format, disk.Size, "")
	}
	if err != nil {
		it.Failures = append(it.Failures, err.Error())
		return it, nil
	}
	st, err := restore.Disk(ctx, d.r, disk, w, opts)
	if cerr := w.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("finish %s: %w", it.Path, cerr)
	}
	it.Restore = time.Since(start)
	it.Bytes = st.BytesWritten
	it.Digest = st.Digest
	for _, f := range failed {
		it.Failures = append(it.Failures, fmt.Sprintf("restore %s: %v", f.Path, f.Err))
	}
	if err != nil {
		msg, ferr := failure(ctx, "restore", err)
		if ferr != nil {
			return it, ferr
		}
		if msg != "" {
			it.Failures = append(it.Failures, msg)
		}
	}
	if !it.OK() {
		d.remove(it.Path)
		return it, nil // a broken restore is not worth verifying
	}

	d.prog.Phase(it.Name, "verify")
	start = time.Now()
	vst, err := d.verifyDisk(ctx, disk, it.Path, format, opts)
	it.Verify = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return it, ctx.Err()
		}
		msg := "verify: " + err.Error()
		if len(vst.Mismatches) > 0 {
			var ranges []string
			for _, m := range vst.Mismatches {
				ranges = append(ranges, fmt.Sprintf("%d+%d", m.Offset, m.Length))
			}
			msg += " (ranges that differ, offset+length: " + strings.Join(ranges, ", ") + ")"
		}
		it.Failures = append(it.Failures, msg)
	} else {
		it.Verified = 1
	}
	d.remove(it.Path)
	return it, nil
}

func (d *driller) verifyDisk(ctx context.Context, disk *repo.Disk, path, format string, opts restore.DiskOptions) (restore.DiskStats, error) {
	opts.OnError = nil
	var img io.ReaderAt
	if format == "raw" {
		f, err := os.Open(path)
		if err != nil {
			return restore.DiskStats{}, err
		}
		defer f.Close()
		img = f
	} else {
		im, err := vmdisk.Open(path, format, vmdisk.OpenOptions{})
		if err != nil {
			return restore.DiskStats{}, err
		}
		defer im.Close()
		if im.Size() < disk.Size {
			return restore.DiskStats{}, fmt.Errorf("the %s image is %d bytes, the disk %d", format, im.Size(), disk.Size)
		}
		img = im
	}
	return restore.VerifyDisk(ctx, d.r, disk, img, opts)
}

// remove deletes a verified item unless the copy is kept, so that the next
// item has the space.
func (d *driller) remove(path string) {
	if !d.opts.Keep {
		os.RemoveAll(path)
	}
}
