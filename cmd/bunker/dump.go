package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

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
(ext2/3/4, FAT, NTFS, XFS), read without mounting anything.` + repoExitStatus(),
		Example: `  bunker dump latest /etc/fstab
  bunker dump latest disk:vm1 > vm1.raw
  bunker dump latest disk:vm1:p2 | file -
  bunker dump latest disk:vm1:p1/etc/fstab`,
		Args: exactArgs(2, "a snapshot and a path or disk:NAME[:pN]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				sn, err := findSnapshot(ctx, r, args[0], filter)
				if err != nil {
					return err
				}
				out := bufio.NewWriterSize(g.stdout, 1<<20)
				if spec, ok := strings.CutPrefix(args[1], "disk:"); ok {
					err = dumpDisk(ctx, r, sn, spec, out)
				} else {
					err = dumpFile(ctx, r, sn, path.Clean("/"+args[1]), out)
				}
				if err != nil {
					return err
				}
				return out.Flush()
			})
		},
	}
	filter.addFlags(cmd.Flags())
	return cmd
}

// dumpFile writes the content of the regular file at p.
func dumpFile(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, p string, w io.Writer) error {
	n, err := lookupPath(ctx, r, sn, p)
	if err != nil {
		return err
	}
	if n.Type != repo.NodeFile {
		return usageErrorf("%s is a %s, not a regular file; dump writes files, disk:NAME or disk:NAME:pN", p, n.Type)
	}
	return restore.Dump(ctx, r, n, w)
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
