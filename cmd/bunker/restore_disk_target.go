package main

import (
	"context"
	"errors"
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
func (o *diskRestoreOptions) diskTarget(size int64) (vmdisk.Writer, error) {
	isDev, err := raw.IsBlockDevice(o.to)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if isDev {
		if !o.force {
			return nil, withHint(fmt.Errorf("%s is a block device: restoring destroys its content", o.to), "add --force to go ahead")
		}
		if o.format != "raw" {
			return nil, usageErrorf("--format %s: a block device is written as raw", o.format)
		}
		return raw.OpenDevice(o.to, size, o.assumeZeroed)
	}
	if _, err := os.Lstat(o.to); err == nil && !o.force {
		return nil, withHint(fmt.Errorf("%s exists", o.to), "add --force to replace it, or --delta to update it in place")
	}
	return vmdisk.Create(o.to, o.format, size, "")
}

// write restores the disk (or the partition [start, start+length)) to the
// target: in place with --delta, else into a new image or onto a device.
func (o *diskRestoreOptions) write(ctx context.Context, r *repo.Repository, d *repo.Disk, start, length int64, opts restore.DiskOptions) (restore.DiskStats, error) {
	if o.delta {
		f, err := o.openDelta()
		if err != nil {
			return restore.DiskStats{}, err
		}
		stats, err := restore.DiskDelta(ctx, r, d, f, opts)
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", o.to, cerr)
		}
		return stats, err
	}
	w, err := o.diskTarget(length)
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
func (o *diskRestoreOptions) openDelta() (*os.File, error) {
	isDev, err := raw.IsBlockDevice(o.to)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if isDev {
		if !o.force {
			return nil, withHint(fmt.Errorf("%s is a block device: the ranges that differ will be overwritten", o.to), "add --force to go ahead")
		}
		return os.OpenFile(o.to, os.O_RDWR|os.O_EXCL, 0) // O_EXCL on a block device: fail if mounted
	}
	return os.OpenFile(o.to, os.O_RDWR|os.O_CREATE, 0o600)
}

// verifyTarget re-reads the written disk and checks it against the snapshot.
func (o *diskRestoreOptions) verifyTarget(ctx context.Context, r *repo.Repository, d *repo.Disk, opts restore.DiskOptions) (restore.DiskStats, error) {
	var img io.ReaderAt
	if o.format == "raw" {
		f, err := os.Open(o.to)
		if err != nil {
			return restore.DiskStats{}, fmt.Errorf("verify: %w", err)
		}
		defer f.Close()
		img = f
	} else {
		im, err := vmdisk.Open(o.to, o.format, vmdisk.OpenOptions{})
		if err != nil {
			return restore.DiskStats{}, fmt.Errorf("verify: %w", err)
		}
		defer im.Close()
		img = im
	}
	st, err := restore.VerifyDisk(ctx, r, d, img, opts)
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
