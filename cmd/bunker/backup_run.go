package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/backup"
	"github.com/bunkerbackup/bunker/repo"
)

// backupParent resolves --parent, or by default the latest snapshot of the
// same host and the same (absolute) source paths.
func (g *globalOptions) backupParent(cmd *cobra.Command, r *repo.Repository, o backupOptions, host string, args []string) (*repo.Snapshot, error) {
	ctx := cmd.Context()
	if o.parent != "" {
		return findSnapshot(ctx, r, o.parent, snapshotFilter{})
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	paths := make([]string, len(args))
	for i, p := range args {
		paths[i] = cleanPath(p)
	}
	slices.Sort(paths)
	list, err := filterSnapshots(ctx, r, snapshotFilter{Hosts: []string{host}})
	if err != nil {
		return nil, err
	}
	for i := len(list) - 1; i >= 0; i-- {
		sp := slices.Sorted(slices.Values(list[i].Paths))
		if slices.Equal(sp, paths) {
			g.out.verbosef(1, "using parent snapshot %s", list[i].ID.Str())
			return list[i], nil
		}
	}
	return nil, nil
}

// Update makes *progress a backup.Progress.
func (p *progress) Update(s backup.Status) {
	p.totalFiles.Store(int64(s.FilesTotal))
	p.totalBytes.Store(int64(s.BytesTotal))
	p.filesDone.Store(int64(s.FilesDone))
	p.bytesDone.Store(int64(s.BytesDone))
	p.errors.Store(int64(s.Errors))
}

func (g *globalOptions) runBackup(ctx context.Context, r *repo.Repository, src backup.Sources, opts backup.Options) error {
	prog := g.newProgress("backing up")
	opts.Progress = prog
	opts.Warn = func(path string, err error) { g.out.warn("backup", path, err) }
	var changes fileChanges
	opts.FileStatus = func(path string, c backup.FileChange, size uint64) {
		changes.add(c, size)
		if g.Verbose >= 2 || (g.Verbose >= 1 && opts.DryRun && c != backup.FileUnmodified) {
			g.listFile(path, c, size, opts.DryRun)
		}
	}
	if !opts.DryRun {
		// Packs of an interrupted backup that never got their index are
		// indexed now, so their blobs are reused instead of stored again.
		n, _, err := r.IndexOrphanPacks(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			g.out.verbosef(1, "indexed %s left by an interrupted backup or prune", count(n, "pack"))
		}
	}
	sn, err := backup.Run(ctx, r, src, opts)
	prog.done()
	if err != nil {
		return err
	}
	if !opts.DryRun {
		g.runSnapshot = sn.ID.String()
		if sn.Summary != nil {
			g.runBytes = int64(sn.Summary.DataAddedPacked)
		}
	}
	g.backupSummary(sn, opts.DryRun, len(src.Paths) > 0, &changes)
	g.diskWarnings(sn, opts.DryRun)
	if sn.Incomplete && !opts.DryRun {
		return &incompleteError{snapshot: sn.ID, failed: len(sn.Warnings)}
	}
	return nil
}

// fileChanges counts the files of a backup and their bytes by change.
type fileChanges struct {
	count [3]uint64
	bytes [3]uint64
}

func (c *fileChanges) add(ch backup.FileChange, size uint64) {
	i := 0
	switch ch {
	case backup.FileChanged:
		i = 1
	case backup.FileUnmodified:
		i = 2
	}
	c.count[i]++
	c.bytes[i] += size
}

// listFile prints one file of a backup with its change (-v with --dry-run,
// -vv always).
func (g *globalOptions) listFile(path string, c backup.FileChange, size uint64, dryRun bool) {
	if g.JSON {
		g.out.jsonLine(map[string]any{"message_type": "verbose_status", "action": string(c), "item": path, "size": size, "dry_run": dryRun})
		return
	}
	g.out.printf("%-10s %s (%s)\n", c, displayPath(path), humanize.IBytes(size))
}

// diskWarnings warns at the end of a backup about disks whose snapshot is
// only crash-consistent or may be inconsistent, so that cron mail shows it.
func (g *globalOptions) diskWarnings(sn *repo.Snapshot, dryRun bool) {
	what := "snapshot " + sn.ID.Str()
	if dryRun {
		what = "the snapshot"
	}
	for _, d := range sn.Disks {
		if d.ChangedDuringRead {
			g.out.warn("backup", d.Source, fmt.Errorf("disk %s changed while it was read: %s may hold an inconsistent disk; back up a frozen copy (an LVM, libvirt or ZFS snapshot)", d.Name, what))
		}
		if d.CrashConsistent {
			g.out.warn("backup", d.Source, fmt.Errorf("disk %s was read while in use (--force): %s is crash-consistent, like a disk after a power cut", d.Name, what))
		}
	}
}

func (g *globalOptions) backupSummary(sn *repo.Snapshot, dryRun, files bool, changes *fileChanges) {
	s := sn.Summary
	if s == nil {
		s = &repo.SnapshotSummary{}
	}
	elapsed := s.BackupEnd.Sub(s.BackupStart)
	if g.JSON {
		m := map[string]any{
			"message_type":          "summary",
			"files_new":             s.FilesNew,
			"files_changed":         s.FilesChanged,
			"files_unmodified":      s.FilesUnmodified,
			"dirs_new":              s.DirsNew,
			"dirs_changed":          s.DirsChanged,
			"dirs_unmodified":       s.DirsUnmodified,
			"data_blobs":            s.DataBlobs,
			"tree_blobs":            s.TreeBlobs,
			"data_added":            s.DataAdded,
			"data_added_packed":     s.DataAddedPacked,
			"total_files_processed": s.TotalFilesProcessed,
			"total_bytes_processed": s.TotalBytesProcessed,
			"backup_start":          s.BackupStart,
			"backup_end":            s.BackupEnd,
			"total_duration":        elapsed.Seconds(),
			"dry_run":               dryRun,
			"incomplete":            sn.Incomplete,
			"disks":                 len(sn.Disks),
		}
		if files {
			m["bytes_new"], m["bytes_changed"], m["bytes_unmodified"] = changes.bytes[0], changes.bytes[1], changes.bytes[2]
		}
		if !dryRun {
			m["snapshot_id"] = sn.ID.String()
		}
		g.out.jsonLine(m)
		return
	}
	if files {
		g.out.printf("Files:  %6d new, %6d changed, %6d unmodified\n", s.FilesNew, s.FilesChanged, s.FilesUnmodified)
		g.out.printf("Dirs:   %6d new, %6d changed, %6d unmodified\n", s.DirsNew, s.DirsChanged, s.DirsUnmodified)
		if dryRun {
			g.out.printf("Bytes:  %s new, %s changed, %s unmodified (not read again)\n",
				humanize.IBytes(changes.bytes[0]), humanize.IBytes(changes.bytes[1]), humanize.IBytes(changes.bytes[2]))
		}
	}
	for _, d := range sn.Disks {
		note := ""
		if d.CrashConsistent {
			note = " (crash-consistent: read while in use)"
		}
		g.out.printf("Disk %s: %s %s, %s of data, from %s%s\n", d.Name, d.Format, humanize.IBytes(uint64(d.Size)), humanize.IBytes(uint64(d.DataBytes)), filepath.Base(d.Source), note)
	}
	verb := "Added to the repository"
	if dryRun {
		verb = "Would add to the repository"
	}
	g.out.printf("%s: %s (%s stored)\n", verb, humanize.IBytes(s.DataAdded), humanize.IBytes(s.DataAddedPacked))
	if files {
		g.out.printf("Processed %s", count(s.TotalFilesProcessed, "file"))
		if len(sn.Disks) > 0 {
			g.out.printf(" and %s", count(len(sn.Disks), "disk"))
		}
	} else {
		g.out.printf("Processed %s", count(len(sn.Disks), "disk"))
	}
	g.out.printf(", %s in %s\n", humanize.IBytes(s.TotalBytesProcessed), elapsed.Round(time.Millisecond))
	switch {
	case dryRun:
		g.out.printf("dry run: no snapshot saved\n")
	case sn.Incomplete:
		g.out.printf("snapshot %s saved, incomplete: %s could not be read\n", sn.ID.Str(), count(len(sn.Warnings), "source"))
	default:
		g.out.printf("snapshot %s saved\n", sn.ID.Str())
	}
}
