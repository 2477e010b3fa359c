package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
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

	// Set by validate: the format chosen (given or inferred from the
	// extension of --to), and a warning when --format contradicts it.
	target  targetFormat
	warning string
}

func (o *diskRestoreOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.name, "disk", "", "restore the disk `name` (see 'bunker ls SNAP')")
	f.StringVar(&o.to, "to", "", "write the disk to `path` (an image file or a block device)")
	f.StringVar(&o.format, "format", "", "image format of --to: raw (sparse), vmdk, vmdk-stream, vhd or vhd-fixed (default: from the extension of --to)")
	f.IntVar(&o.partition, "partition", 0, "restore only partition `N` (see 'bunker volumes SNAP')")
	f.BoolVar(&o.delta, "delta", false, "read the existing --to and write only what differs")
	f.BoolVar(&o.force, "force", false, "overwrite an existing --to file or device")
	f.BoolVar(&o.assumeZeroed, "assume-zeroed", false, "the target device reads as zeros: do not write zero ranges")
}

func (o *diskRestoreOptions) validate(cmd *cobra.Command) error {
	if o.to == "" {
		return usageErrorf("--disk needs --to PATH|DEVICE")
	}
	inferred, known, err := formatFromExt(o.to)
	if o.format != "" {
		tf, ok := targetFormats[o.format]
		if !ok {
			return usageErrorf("--format %q: want %s", o.format, targetFormatNames)
		}
		o.target = tf
		if known && inferred.container != tf.container {
			o.warning = fmt.Sprintf("writing %s with --format %s, though its extension suggests %s", o.to, tf.name, inferred.container)
		}
	} else {
		if err != nil {
			return err
		}
		o.target = inferred
	}
	if cmd.Flags().Changed("partition") && o.partition < 1 {
		return usageErrorf("--partition %d: partitions are numbered from 1", o.partition)
	}
	if o.delta && o.target.container != "raw" {
		return usageErrorf("--delta updates a raw image or a device in place; %s is %s", o.to, o.target.name)
	}
	return nil
}

// targetFormat is an image format restore can write: a vmdisk container
// format and its variant.
type targetFormat struct {
	name      string // as given to --format
	container string // vmdisk format
	variant   string // vmdisk.Create variant
}

var targetFormats = map[string]targetFormat{
	"raw":         {"raw", "raw", ""},
	"vmdk":        {"vmdk", "vmdk", "monolithicSparse"},
	"vmdk-stream": {"vmdk-stream", "vmdk", "streamOptimized"},
	"vhd":         {"vhd", "vhd", "dynamic"},
	"vhd-fixed":   {"vhd-fixed", "vhd", "fixed"},
}

const targetFormatNames = "raw, vmdk, vmdk-stream, vhd or vhd-fixed"

// formatFromExt infers the format of a restore target from its file name
// extension. known is false when the extension says nothing (raw is then
// assumed); an extension naming a format restore cannot write is an error.
func formatFromExt(path string) (tf targetFormat, known bool, err error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".vmdk":
		return targetFormats["vmdk"], true, nil
	case ".vhd", ".vpc":
		return targetFormats["vhd"], true, nil
	case ".raw", ".img", ".bin":
		return targetFormats["raw"], true, nil
	case ".qcow2", ".qcow", ".vhdx":
		tf = targetFormat{name: ext[1:], container: ext[1:]}
		return tf, true, usageErrorf("%s: restore cannot write %s images; give --format %s", path, ext[1:], targetFormatNames)
	}
	return targetFormats["raw"], false, nil
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
	if o.warning != "" {
		g.out.warn("restore", o.to, errors.New(o.warning))
	}
	isDev, err := raw.IsBlockDevice(o.to)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if isDev {
		if o.format != "" && o.format != "raw" {
			return usageErrorf("--format %s: a block device is written as raw", o.format)
		}
		o.target = targetFormat{name: "device", container: "raw"}
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
	stats, err := o.write(ctx, r, d, start, length, isDev, opts)
	prog.done()
	var inc *restore.IncompleteError
	if err != nil && !errors.As(err, &inc) {
		return err
	}
	if o.verify && err == nil {
		vbegin := time.Now()
		vprog := g.newProgress("verifying " + what)
		opts.Progress = vprog
		var vst restore.DiskStats
		vst, err = o.verifyTarget(ctx, r, d, start, length, opts)
		vprog.done()
		if err != nil {
			return err
		}
		if !g.JSON {
			vtime := time.Since(vbegin).Round(time.Millisecond)
			if o.partition > 0 {
				defer g.out.printf("verified %s: %s and %s of holes match the snapshot (read %s in %s)\n",
					o.to, count(vst.Chunks, "chunk"), humanize.IBytes(uint64(vst.HoleBytes)), humanize.IBytes(uint64(vst.BytesRead)), vtime)
			} else {
				defer g.out.printf("verified %s: whole-disk digest %s matches the snapshot (read %s in %s)\n",
					o.to, shortStr(vst.Digest), humanize.IBytes(uint64(vst.BytesRead)), vtime)
			}
		}
	}
	elapsed := time.Since(begin)
	g.runBytes = stats.BytesWritten
	if g.JSON {
		g.out.jsonLine(map[string]any{
			"message_type":   "summary",
			"snapshot_id":    sn.ID.String(),
			"disk":           d.Name,
			"partition":      o.partition,
			"target":         o.to,
			"format":         o.target.name,
			"size":           length,
			"chunks":         stats.Chunks,
			"chunks_written": stats.ChunksWritten,
			"bytes_written":  stats.BytesWritten,
			"bytes_read":     stats.BytesRead,
			"hole_bytes":     stats.HoleBytes,
			"zeroed_bytes":   stats.ZeroedBytes,
			"blocks_changed": stats.BlocksChanged,
			"failed_ranges":  len(stats.Failed),
			"digest":         stats.Digest,
			"verified":       o.verify,
			"total_duration": elapsed.Seconds(),
		})
	} else {
		g.out.printf("restored %s of snapshot %s to %s (%s): %s, %s written, %s holes, in %s\n", what, sn.ID.Str(), o.to, o.target.name,
			humanize.IBytes(uint64(length)), humanize.IBytes(uint64(stats.BytesWritten)), humanize.IBytes(uint64(stats.HoleBytes)), elapsed.Round(time.Millisecond))
		if o.delta {
			g.out.printf("delta: read %s of the target, %d of %s differed, %s of 4 KiB differed: %s written, %s of data in holes cleared\n",
				humanize.IBytes(uint64(stats.BytesRead)), stats.ChunksWritten, count(stats.Chunks, "chunk"), count(stats.BlocksChanged, "block"),
				humanize.IBytes(uint64(stats.BytesWritten)), humanize.IBytes(uint64(stats.ZeroedBytes)))
		}
	}
	return err
}
