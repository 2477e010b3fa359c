package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

type diskRestoreOptions struct {
	name         string
	to           string
	format       string
	partition    int
	delta        bool
	verify       bool
	force        bool
	assumeZeroed bool
}

func (o *diskRestoreOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.name, "disk", "", "restore the disk `name` (see 'bunker ls SNAP')")
	f.StringVar(&o.to, "to", "", "write the disk to `path` (an image file or a block device)")
	f.StringVar(&o.format, "format", "raw", "image format of --to: raw (sparse), vmdk or vhd")
	f.IntVar(&o.partition, "partition", 0, "restore only partition `N` (see 'bunker volumes SNAP')")
	f.BoolVar(&o.delta, "delta", false, "read the existing --to and write only what differs")
	f.BoolVar(&o.force, "force", false, "overwrite an existing --to file or device")
	f.BoolVar(&o.assumeZeroed, "assume-zeroed", false, "the target device reads as zeros: do not write zero ranges")
}

func (o *diskRestoreOptions) validate(cmd *cobra.Command) error {
	if o.to == "" {
		return usageErrorf("--disk needs --to PATH|DEVICE")
	}
	switch o.format {
	case "raw", "vmdk", "vhd":
	default:
		return usageErrorf("--format %q: want raw, vmdk or vhd", o.format)
	}
	if cmd.Flags().Changed("partition") && o.partition < 1 {
		return usageErrorf("--partition %d: partitions are numbered from 1", o.partition)
	}
	if o.delta && (o.format != "raw" || o.partition > 0) {
		return usageErrorf("--delta restores a whole disk onto a raw image or a device; it cannot be combined with --format %s or --partition", o.format)
	}
	return nil
}

// diskTarget opens the restore target: a block device, or a new image file
// of the chosen format. An existing file or device needs --force.
func (o *diskRestoreOptions) diskTarget(size int64) (vmdisk.Writer, error) {
	isDev, err := raw.IsBlockDevice(o.to)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if isDev {
		if !o.force {
			return nil, usageErrorf("%s is a block device: its content will be destroyed; add --force to go ahead", o.to)
		}
		if o.format != "raw" {
			return nil, usageErrorf("--format %s: a block device is written as raw", o.format)
		}
		return raw.OpenDevice(o.to, size, o.assumeZeroed)
	}
	if _, err := os.Lstat(o.to); err == nil && !o.force {
		return nil, usageErrorf("%s exists; add --force to replace it, or --delta to update it in place", o.to)
	}
	return vmdisk.Create(o.to, o.format, size, "")
}

func (g *globalOptions) restoreDisk(cmd *cobra.Command, r *repo.Repository, sn *repo.Snapshot, o diskRestoreOptions) error {
	ctx := cmd.Context()
	d, err := findDisk(sn, o.name)
	if err != nil {
		return err
	}
	start, length := int64(0), d.Size
	what := "disk:" + d.Name
	if o.partition > 0 {
		if start, length, err = partitionRange(ctx, r, d, o.partition); err != nil {
			return err
		}
		what = fmt.Sprintf("disk:%s:p%d", d.Name, o.partition)
	}
	w, err := o.diskTarget(length)
	if err != nil {
		return err
	}
	begin := time.Now()
	prog := g.newProgress("restoring " + what)
	opts := restore.DiskOptions{
		BlobID:   r.BlobID,
		Progress: prog,
		OnError: func(path string, err error) error {
			prog.errors.Add(1)
			g.out.warn("restore", path, fmt.Errorf("restore %s: %w", path, err))
			return nil
		},
	}
	var stats restore.DiskStats
	if o.partition > 0 {
		stats, err = restore.DiskRange(ctx, r, d, start, length, w, opts)
	} else {
		stats, err = restore.Disk(ctx, r, d, w, opts)
	}
	prog.done()
	if cerr := w.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("finish %s: %w", o.to, cerr)
	}
	var inc *restore.IncompleteError
	if err != nil && !errors.As(err, &inc) {
		return err
	}
	elapsed := time.Since(begin)
	if g.JSON {
		g.out.jsonLine(map[string]any{
			"message_type":   "summary",
			"snapshot_id":    sn.ID.String(),
			"disk":           d.Name,
			"partition":      o.partition,
			"target":         o.to,
			"format":         o.format,
			"size":           length,
			"chunks":         stats.Chunks,
			"chunks_written": stats.ChunksWritten,
			"bytes_written":  stats.BytesWritten,
			"bytes_read":     stats.BytesRead,
			"hole_bytes":     stats.HoleBytes,
			"failed_ranges":  len(stats.Failed),
			"digest":         stats.Digest,
			"total_duration": elapsed.Seconds(),
		})
	} else {
		g.out.printf("restored %s of snapshot %s to %s (%s): %s, %s written, %s holes, in %s\n", what, sn.ID.Str(), o.to, o.format,
			humanize.IBytes(uint64(length)), humanize.IBytes(uint64(stats.BytesWritten)), humanize.IBytes(uint64(stats.HoleBytes)), elapsed.Round(time.Millisecond))
	}
	return err
}
