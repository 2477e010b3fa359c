package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

// diskTarget opens the restore target: a block device, or a new image file
// of the chosen format. An existing file or device needs --force.
func (o *diskRestoreOptions) diskTarget(size int64, isDev bool) (vmdisk.Writer, error) {
	if isDev {
		if !o.force {
			return nil, withHint(fmt.Errorf("%s is a block device: restoring destroys its content", o.to), "add --force to go ahead")
		}
		return raw.OpenDevice(o.to, size, o.assumeZeroed)
	}
	if _, err := os.Lstat(o.to); err == nil && !o.force {
		return nil, withHint(fmt.Errorf("%s exists", o.to), "add --force to replace it, or --delta to update it in place")
	}
	return vmdisk.Create(o.to, o.target.container, size, o.target.variant)
}

// write restores the disk (or the partition [start, start+length)) to the
// target: in place with --delta, else into a new image or onto a device.
func (o *diskRestoreOptions) write(ctx context.Context, r *repo.Repository, d *repo.Disk, start, length int64, isDev bool, opts restore.DiskOptions) (restore.DiskStats, error) {
	if o.delta {
		f, err := o.openDelta(isDev)
		if err != nil {
			return restore.DiskStats{}, err
		}
		var stats restore.DiskStats
		if o.partition > 0 {
			stats, err = restore.DiskDeltaRange(ctx, r, d, start, length, f, opts)
		} else {
			stats, err = restore.DiskDelta(ctx, r, d, f, opts)
		}
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", o.to, cerr)
		}
		return stats, err
	}
	w, err := o.diskTarget(length, isDev)
	if err != nil {
		return restore.DiskStats{}, err
	}
	var stats restore.DiskStats
	if o.partition > 0 {
		stats, err = restore.DiskRange(ctx, r, d, start, length, w, opts)
	} else {
		stats, err = restore.Disk(ctx, r, d, w, opts)
	}
	if cerr := w.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("finish %s: %w", o.to, cerr)
	}
	return stats, err
}

// openDelta opens an existing raw image (or creates it) or a block device
// (exclusively, with --force) for a delta restore.
func (o *diskRestoreOptions) openDelta(isDev bool) (*os.File, error) {
	if isDev {
		if !o.force {
			return nil, withHint(fmt.Errorf("%s is a block device: the ranges that differ will be overwritten", o.to), "add --force to go ahead")
		}
		return os.OpenFile(o.to, os.O_RDWR|os.O_EXCL, 0) // O_EXCL on a block device: fail if mounted
	}
	return os.OpenFile(o.to, os.O_RDWR|os.O_CREATE, 0o600)
}

// verifyTarget re-reads the written disk (or the partition [start,
// start+length) of it) and checks it against the snapshot. Only what the
// target has allocated is read: a raw file's data ranges (SEEK_DATA), an
// image's extents; the rest is known to read as zeros.
func (o *diskRestoreOptions) verifyTarget(ctx context.Context, r *repo.Repository, d *repo.Disk, start, length int64, opts restore.DiskOptions) (restore.DiskStats, error) {
	var img io.ReaderAt
	if o.target.container == "raw" {
		f, err := os.Open(o.to)
		if err != nil {
			return restore.DiskStats{}, fmt.Errorf("verify: %w", err)
		}
		defer f.Close()
		img = f
	} else {
		im, err := vmdisk.Open(o.to, o.target.container, vmdisk.OpenOptions{})
		if err != nil {
			return restore.DiskStats{}, fmt.Errorf("verify: %w", err)
		}
		defer im.Close()
		img = im
	}
	var st restore.DiskStats
	var err error
	if o.partition > 0 {
		st, err = restore.VerifyDiskRange(ctx, r, d, start, length, img, opts)
	} else {
		st, err = restore.VerifyDisk(ctx, r, d, img, opts)
	}
	if err != nil {
		var ranges []string
		for _, m := range st.Mismatches {
			ranges = append(ranges, fmt.Sprintf("%d+%d", m.Offset, m.Length))
		}
		if len(ranges) > 0 {
			return st, withHint(fmt.Errorf("verify %s: %w", o.to, err), "ranges that differ (offset+length): %s", strings.Join(ranges, ", "))
		}
		return st, fmt.Errorf("verify %s: %w", o.to, err)
	}
	return st, nil
}
