package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
)

type restoreOptions struct {
	filter    snapshotFilter
	target    string
	include   []string
	exclude   []string
	overwrite string
	verify    bool
	dryRun    bool
	disk      diskRestoreOptions
}

func newRestoreCmd(g *globalOptions) *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore SNAP (--target DIR | --disk NAME --to PATH|DEVICE)",
		Short: "Restore files, or a disk or partition, from a snapshot",
		Long: `Restore the files of a snapshot into a directory (--target), or one of its
disks (--disk) to an image file or block device (--to).

Files: a snapshot path /a/b is restored as DIR/a/b. --include and --exclude
take patterns matched against snapshot paths ("*" within a name, "**" across
directories, a leading "/" anchors at the root). --overwrite decides about
files that exist: always (default), if-changed (size, mtime or content
differ) or never.

Files from a disk: --disk NAME --partition N --target DIR copies the files of
the partition's file system (ext2/3/4, FAT, NTFS, XFS; --include PATH for a
part of it) into DIR, without mounting anything.

Disks: --format chooses the image written to --to:
  raw          a sparse raw file
  vmdk         VMDK, monolithicSparse (one growable file)
  vmdk-stream  VMDK, streamOptimized (compressed, for OVA/vSphere import)
  vhd          VHD, dynamic
  vhd-fixed    VHD, fixed (raw data and a footer; Azure wants this)
Without --format the extension of --to decides: .vmdk is vmdk, .vhd and .vpc
are vhd, .qcow2 and .vhdx (not writable) need --format, anything else
(.raw, .img, none) is raw; the output names the format used. A block device is written in place as raw. --format against the
extension is allowed, with a warning.

--partition N restores only partition N. --delta reads an existing raw image
or device (of the disk, or with --partition of the partition) and writes only
the 4 KiB blocks that differ. --verify re-reads what was written, reading only
the target's allocated ranges, and checks it against the snapshot.

--dry-run (files) says what would be restored without writing anything; with
-v it lists each path.

Items that cannot be restored (a damaged blob) are reported; everything else
is restored and the exit status is 1.` + repoExitStatus(),
		Example: `  bunker restore latest --target /tmp/restore
  bunker restore 4f3c2a1b --target / --include /etc/nginx --overwrite if-changed
  bunker restore latest --disk vm1 --to /var/lib/libvirt/images/vm1.vmdk --verify
  bunker restore latest --disk vm1 --to vm1.vmdk --format vmdk-stream
  bunker restore latest --disk vm1 --to vm1.vhd --format vhd-fixed
  bunker restore latest --target /tmp/restore --dry-run -v
  bunker restore latest --disk vm1 --partition 2 --to /dev/vg0/restore --verify
  bunker restore latest --disk vm1 --partition 2 --to root.img --delta
  bunker restore latest --disk vm1 --to /var/lib/libvirt/images/vm1.raw --delta
  bunker restore latest --disk vm1 --partition 1 --target /tmp/vm1-files --include /etc`,
		Args: exactArgs(1, "one snapshot (an id prefix or 'latest')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			return g.withRepo(cmd.Context(), sharedLock, func(r *repo.Repository) error {
				sn, err := findSnapshot(cmd.Context(), r, args[0], o.filter)
				if err != nil {
					return err
				}
				g.runSnapshot = sn.ID.String()
				switch {
				case o.disk.name != "" && o.target != "":
					return g.restorePartitionFiles(cmd.Context(), r, sn, o)
				case o.disk.name != "":
					return g.restoreDisk(cmd, r, sn, o.disk)
				}
				return g.restoreFiles(cmd, r, sn, o)
			})
		},
	}
	f := cmd.Flags()
	o.filter.addFlags(f)
	f.StringVarP(&o.target, "target", "t", "", "restore files into `directory`")
	f.StringArrayVarP(&o.include, "include", "i", nil, "restore only items matching `pattern` (repeatable)")
	f.StringArrayVarP(&o.exclude, "exclude", "e", nil, "leave out items matching `pattern` (repeatable)")
	f.StringVar(&o.overwrite, "overwrite", "always", "existing files: always, if-changed or never")
	f.BoolVar(&o.verify, "verify", false, "re-read what was written and check it")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "files: say what would be restored (with -v each path) without writing")
	o.disk.addFlags(f)
	return cmd
}

func (o *restoreOptions) validate(cmd *cobra.Command) error {
	switch {
	case o.target == "" && o.disk.name == "":
		return usageErrorf("restore needs --target DIR (files) or --disk NAME --to PATH (a disk)")
	case o.target != "" && o.disk.name != "":
		// Files out of a partition's file system.
		if o.disk.partition < 1 || cmd.Flags().Changed("to") {
			return usageErrorf("--target with --disk restores files from a partition: give --partition N and no --to")
		}
		for _, name := range []string{"exclude", "overwrite", "format", "delta", "force", "assume-zeroed", "verify", "dry-run"} {
			if cmd.Flags().Changed(name) {
				return usageErrorf("--%s does not apply to restoring files from a partition", name)
			}
		}
		return nil
	case o.disk.name != "":
		for _, name := range []string{"include", "exclude", "overwrite", "dry-run"} {
			if cmd.Flags().Changed(name) {
				return usageErrorf("--%s applies to file restores (--target), not to --disk", name)
			}
		}
		o.disk.verify = o.verify
		return o.disk.validate(cmd)
	}
	for _, name := range []string{"to", "format", "partition", "delta", "force", "assume-zeroed"} {
		if cmd.Flags().Changed(name) {
			return usageErrorf("--%s applies to disk restores (--disk), not to --target", name)
		}
	}
	if _, err := restore.ParseOverwrite(o.overwrite); err != nil {
		return usageErrorf("--overwrite: %v", err)
	}
	if o.dryRun && o.verify {
		return usageErrorf("--verify re-reads what was written; a --dry-run writes nothing")
	}
	return nil
}

func (g *globalOptions) restoreFiles(cmd *cobra.Command, r *repo.Repository, sn *repo.Snapshot, o restoreOptions) error {
	if sn.Tree == nil {
		return withHint(fmt.Errorf("snapshot %s holds no files, only disks", sn.ID.Str()), "restore a disk with --disk NAME --to PATH")
	}
	ow, _ := restore.ParseOverwrite(o.overwrite)
	if o.dryRun {
		return g.restoreFilesDryRun(cmd, r, sn, o, ow)
	}
	start := time.Now()
	prog := g.newProgress("restoring")
	stats, err := restore.Files(cmd.Context(), r, sn, o.target, restore.FileOptions{
		Include:   o.include,
		Exclude:   o.exclude,
		Overwrite: ow,
		Verify:    o.verify,
		BlobID:    r.BlobID,
		OnError: func(path string, err error) error {
			prog.errors.Add(1)
			g.out.warn("restore", path, fmt.Errorf("restore %s: %w", path, err))
			return nil
		},
		Progress: prog,
	})
	prog.done()
	for _, w := range stats.Warnings {
		g.out.warn("restore", "", errors.New(w))
	}
	var inc *restore.IncompleteError
	if err != nil && !errors.As(err, &inc) {
		return err
	}
	elapsed := time.Since(start)
	g.runBytes = int64(stats.Bytes)
	if g.JSON {
		g.out.jsonLine(map[string]any{
			"message_type":   "summary",
			"snapshot_id":    sn.ID.String(),
			"files_restored": stats.Files,
			"dirs_restored":  stats.Dirs,
			"symlinks":       stats.Symlinks,
			"hardlinks":      stats.Hardlinks,
			"special":        stats.Special,
			"files_skipped":  stats.Skipped,
			"files_verified": stats.Verified,
			"files_failed":   len(stats.Failed),
			"bytes_restored": stats.Bytes,
			"total_duration": elapsed.Seconds(),
		})
	} else {
		g.out.printf("restored snapshot %s to %s: %s, %s, %s, %s, %s in %s\n",
			sn.ID.Str(), o.target, count(stats.Files, "file"), count(stats.Dirs, "dir"), count(stats.Symlinks, "symlink"), count(stats.Hardlinks, "hard link"), humanize.IBytes(stats.Bytes), elapsed.Round(time.Millisecond))
		if stats.Skipped > 0 {
			g.out.printf("left %d existing item%s alone (--overwrite %s)\n", stats.Skipped, plural(int(stats.Skipped)), ow)
		}
		if o.verify {
			g.out.printf("verified %s\n", count(stats.Verified, "file"))
		}
	}
	return err
}

// restoreFilesDryRun says what restoreFiles would restore, writing nothing.
func (g *globalOptions) restoreFilesDryRun(cmd *cobra.Command, r *repo.Repository, sn *repo.Snapshot, o restoreOptions, ow restore.Overwrite) error {
	stats, err := restore.Files(cmd.Context(), r, sn, o.target, restore.FileOptions{
		Include:   o.include,
		Exclude:   o.exclude,
		Overwrite: ow,
		BlobID:    r.BlobID,
		DryRun:    true,
		OnError: func(path string, err error) error {
			g.out.warn("restore", path, fmt.Errorf("restore %s: %w", path, err))
			return nil
		},
		OnItem: func(p string, n *repo.Node, skip bool) {
			if g.Verbose < 1 {
				return
			}
			action := "restore"
			if skip {
				action = "skip"
			}
			if g.JSON {
				g.out.jsonLine(map[string]any{"message_type": "verbose_status", "action": action, "item": p, "type": n.Type, "size": n.Size})
				return
			}
			g.out.printf("would %-7s %s\n", action, displayPath(p))
		},
	})
	var inc *restore.IncompleteError
	if err != nil && !errors.As(err, &inc) {
		return err
	}
	if g.JSON {
		g.out.jsonLine(map[string]any{
			"message_type":   "summary",
			"dry_run":        true,
			"snapshot_id":    sn.ID.String(),
			"files_restored": stats.Files,
			"dirs_restored":  stats.Dirs,
			"symlinks":       stats.Symlinks,
			"hardlinks":      stats.Hardlinks,
			"special":        stats.Special,
			"files_skipped":  stats.Skipped,
			"bytes_restored": stats.Bytes,
		})
		return err
	}
	g.out.printf("would restore snapshot %s to %s: %s, %s, %s, %s, %d special, %s (dry run, nothing written)\n",
		sn.ID.Str(), o.target, count(stats.Files, "file"), count(stats.Dirs, "dir"), count(stats.Symlinks, "symlink"), count(stats.Hardlinks, "hard link"), stats.Special, humanize.IBytes(stats.Bytes))
	if stats.Skipped > 0 {
		g.out.printf("would leave %d existing item%s alone (--overwrite %s)\n", stats.Skipped, plural(int(stats.Skipped)), ow)
	}
	return err
}

// Total and Done make *progress a restore.Progress (items are files or
// disk pieces).
func (p *progress) Total(items, bytes int64) {
	p.totalFiles.Add(items)
	p.totalBytes.Add(bytes)
}

func (p *progress) Done(items, bytes int64) {
	p.filesDone.Add(items)
	p.bytesDone.Add(bytes)
}
