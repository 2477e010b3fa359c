package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
)

func newDumpCmd(g *globalOptions) *cobra.Command {
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "dump SNAP PATH|disk:NAME[:pN[/PATH]]",
		Short: "Write a file, a disk or a partition of a snapshot to stdout",
		Long: `Write the content of one file of a snapshot to stdout, or a whole disk
(disk:NAME) or one partition of it (disk:NAME:pN). Holes come out as zeros.
disk:NAME:pN/PATH writes the file PATH of the file system in the partition
(ext2/3/4, FAT, NTFS, XFS), read without mounting anything.

A directory (and "/", the whole file tree) is written as a tar archive
(PAX format: modes, owners, nanosecond times, symlinks, hard links, device
nodes and extended attributes), as restic does.

Disks, partitions and archives are not written to a terminal: redirect
stdout to a file or a pipe. When the reader of the pipe stops early
(dump ... | head), dump stops quietly and exits 0.` + repoExitStatus(),
		Example: `  bunker dump latest /etc/fstab
  bunker dump latest disk:vm1 > vm1.raw
  bunker dump latest disk:vm1:p2 | file -
  bunker dump latest disk:vm1:p1/etc/fstab
  bunker dump latest /home/alice > alice.tar`,
		Args: exactArgs(2, "a snapshot and a path or disk:NAME[:pN]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// A reader that goes away (dump | head) makes writes fail with
			// EPIPE instead of killing the process, so the lock is released.
			pipe := make(chan os.Signal, 1)
			signal.Notify(pipe, syscall.SIGPIPE)
			defer signal.Stop(pipe)
			err := g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				sn, err := findSnapshot(ctx, r, args[0], filter)
				if err != nil {
					return err
				}
				out := bufio.NewWriterSize(g.stdout, 1<<20)
				if spec, ok := strings.CutPrefix(args[1], "disk:"); ok {
					if err := g.refuseTerminal("a disk image", "disk.raw"); err != nil {
						return err
					}
					err = dumpDisk(ctx, r, sn, spec, out)
				} else {
					err = g.dumpPath(ctx, r, sn, path.Clean("/"+args[1]), out)
				}
				if err != nil {
					return err
				}
				return out.Flush()
			})
			if errors.Is(err, syscall.EPIPE) {
				g.out.verbosef(1, "the reader of the output went away: stopped")
				return nil
			}
			return err
		},
	}
	filter.addFlags(cmd.Flags())
	return cmd
}

// dumpPath writes the content of the regular file at p, or the directory
// at p as a tar archive.
func (g *globalOptions) dumpPath(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, p string, w io.Writer) error {
	warn := func(p string, err error) { g.out.warn("dump", p, err) }
	if p == "/" && sn.Tree != nil {
		if err := g.refuseTerminal("a tar archive", "files.tar"); err != nil {
			return err
		}
		return dumpTar(ctx, r, "/", nil, *sn.Tree, w, warn)
	}
	n, err := lookupPath(ctx, r, sn, p)
	if err != nil {
		return err
	}
	switch n.Type {
	case repo.NodeFile:
		return restore.Dump(ctx, r, n, w)
	case repo.NodeDir:
		if err := g.refuseTerminal("a tar archive", path.Base(p)+".tar"); err != nil {
			return err
		}
		return dumpTar(ctx, r, p, n, repo.ID{}, w, warn)
	}
	return usageErrorf("%s is a %s, not a regular file or a directory; dump writes files, directories (as tar), disk:NAME or disk:NAME:pN", p, n.Type)
}

// refuseTerminal refuses to write binary data (what) to a terminal.
func (g *globalOptions) refuseTerminal(what, example string) error {
	if !isTerminal(g.stdout) {
		return nil
	}
	return withHint(usageErrorf("stdout is a terminal: dump does not write %s to it", what),
		"redirect the output to a file or a pipe: bunker dump ... > %s", example)
}

// dumpDisk writes a disk ("NAME"), a partition ("NAME:pN") or a file in a
// partition's file system ("NAME:pN/PATH").
func dumpDisk(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, spec string, w io.Writer) error {
	ds, err := parseDiskSpec(spec)
	if err != nil {
		return err
	}
	d, err := findDisk(sn, ds.name)
	if err != nil {
		return err
	}
	if ds.path != "" {
		fsys, err := openPartitionFS(ctx, r, d, ds.part)
		if err != nil {
			return err
		}
		return dumpFSFile(fsys, ds.path, w)
	}
	start, length := int64(0), d.Size
	if ds.part > 0 {
		if start, length, err = partitionRange(ctx, r, d, ds.part); err != nil {
			return err
		}
	}
	return restore.DumpDisk(ctx, r, d, start, length, w)
}

// findDisk returns the disk called name in sn.
func findDisk(sn *repo.Snapshot, name string) (*repo.Disk, error) {
	var names []string
	for i := range sn.Disks {
		if sn.Disks[i].Name == name {
			return &sn.Disks[i], nil
		}
		names = append(names, sn.Disks[i].Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("snapshot %s holds no disks", sn.ID.Str())
	}
	return nil, withHint(fmt.Errorf("snapshot %s has no disk %q", sn.ID.Str(), name), "its disks: %s", strings.Join(names, ", "))
}

// parsePartition parses "pN" or "N".
func parsePartition(s string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(strings.TrimPrefix(s, "p"), "%d", &n); err != nil || n < 1 || fmt.Sprint(n) != strings.TrimPrefix(s, "p") {
		return 0, usageErrorf("bad partition %q: want pN with N >= 1, e.g. p1", s)
	}
	return n, nil
}
