package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
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
	if o.verify && o.partition > 0 {
		return usageErrorf("--verify checks a whole disk against its digest; a partition's chunks are verified by their ids while restoring")
	}
	return nil
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
	stats, err := o.write(ctx, r, d, start, length, opts)
	prog.done()
	var inc *restore.IncompleteError
	if err != nil && !errors.As(err, &inc) {
		return err
	}
	if o.verify && err == nil {
		vprog := g.newProgress("verifying " + what)
		opts.Progress = vprog
		var vst restore.DiskStats
		vst, err = o.verifyTarget(ctx, r, d, opts)
		vprog.done()
		if err != nil {
			return err
		}
		if !g.JSON {
			defer g.out.printf("verified %s: whole-disk digest %s matches the snapshot\n", o.to, shortStr(vst.Digest))
		}
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
			"zeroed_bytes":   stats.ZeroedBytes,
			"failed_ranges":  len(stats.Failed),
			"digest":         stats.Digest,
			"verified":       o.verify,
			"total_duration": elapsed.Seconds(),
		})
	} else {
		g.out.printf("restored %s of snapshot %s to %s (%s): %s, %s written, %s holes, in %s\n", what, sn.ID.Str(), o.to, o.format,
			humanize.IBytes(uint64(length)), humanize.IBytes(uint64(stats.BytesWritten)), humanize.IBytes(uint64(stats.HoleBytes)), elapsed.Round(time.Millisecond))
		if o.delta {
			g.out.printf("delta: read %s of the target, %d of %d chunks differed, cleared %s of data in holes\n",
				humanize.IBytes(uint64(stats.BytesRead)), stats.ChunksWritten, stats.Chunks, humanize.IBytes(uint64(stats.ZeroedBytes)))
		}
	}
	return err
}
