package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
	"github.com/bunkerbackup/bunker/vmdisk/part"
)

// diskJSON describes a disk of a snapshot with its partitions.
type diskJSON struct {
	Name              string          `json:"name"`
	Source            string          `json:"source"`
	Format            string          `json:"format"`
	Size              int64           `json:"size"`
	SectorSize        int             `json:"sector_size"`
	DataBytes         int64           `json:"data_bytes"`
	Digest            string          `json:"digest"`
	CrashConsistent   bool            `json:"crash_consistent,omitempty"`
	ChangedDuringRead bool            `json:"changed_during_read,omitempty"`
	PartitionTable    string          `json:"partition_table"`
	Partitions        []partitionJSON `json:"partitions"`
	Warnings          []string        `json:"warnings,omitempty"`
}

type partitionJSON struct {
	Number     int    `json:"number"`
	Start      int64  `json:"start"`
	Size       int64  `json:"size"`
	Type       string `json:"type"`
	TypeID     string `json:"type_id"`
	Name       string `json:"name,omitempty"`
	Filesystem string `json:"filesystem,omitempty"`
	Label      string `json:"label,omitempty"`
	UUID       string `json:"uuid,omitempty"`
	Bootable   bool   `json:"bootable,omitempty"`
}

func newVolumesCmd(g *globalOptions) *cobra.Command {
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "volumes SNAP",
		Short: "List the partitions of each disk of a snapshot",
		Long: `List the partitions ("system volumes") of each disk in a snapshot: number,
start, size, type, name or label, and the filesystem found in it. Only the
partition table and superblocks are read from the repository. Restore one
with 'restore --disk NAME --partition N' or stream it with
'dump SNAP disk:NAME:pN'.` + repoExitStatus(),
		Example: `  bunker volumes latest
  bunker volumes 4f3c2a1b --json`,
		Args: exactArgs(1, "one snapshot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				sn, err := findSnapshot(ctx, r, args[0], filter)
				if err != nil {
					return err
				}
				if len(sn.Disks) == 0 {
					return fmt.Errorf("snapshot %s holds no disks", sn.ID.Str())
				}
				disks, err := describeDisks(ctx, r, sn)
				if err != nil {
					return err
				}
				return g.out.document(disks, func(w io.Writer) error { return printVolumes(w, disks) })
			})
		},
	}
	filter.addFlags(cmd.Flags())
	return cmd
}

func printVolumes(w io.Writer, disks []diskJSON) error {
	for i, d := range disks {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "disk:%s  %s, %s partition table, %d-byte sectors\n", d.Name, humanize.IBytes(uint64(d.Size)), d.PartitionTable, d.SectorSize)
		for _, warn := range d.Warnings {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
		if len(d.Partitions) == 0 {
			continue
		}
		var rows [][]string
		for _, p := range d.Partitions {
			rows = append(rows, []string{fmt.Sprintf("p%d", p.Number), fmt.Sprint(p.Start), humanize.IBytes(uint64(p.Size)), p.Type,
				orDefault(strings.TrimSpace(p.Name+" "+p.Label), "-"), orDefault(p.Filesystem, "-")})
		}
		if err := table(w, []string{"Part", "Start", "Size", "Type", "Name/Label", "Filesystem"}, rows); err != nil {
			return err
		}
	}
	return nil
}

// describeDisks describes the disks of sn with their partition tables.
func describeDisks(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) ([]diskJSON, error) {
	var out []diskJSON
	for i := range sn.Disks {
		d := &sn.Disks[i]
		t, err := readTable(ctx, r, d)
		if err != nil {
			return nil, err
		}
		j := diskJSON{Name: d.Name, Source: d.Source, Format: d.Format, Size: d.Size, SectorSize: d.SectorSize, DataBytes: d.DataBytes,
			Digest: d.Digest, CrashConsistent: d.CrashConsistent, ChangedDuringRead: d.ChangedDuringRead,
			PartitionTable: t.Type, Partitions: []partitionJSON{}, Warnings: t.Warnings}
		for _, p := range t.Partitions {
			j.Partitions = append(j.Partitions, partitionJSON{Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type, TypeID: p.TypeID,
				Name: p.Name, Filesystem: p.Filesystem, Label: p.Label, UUID: p.UUID, Bootable: p.Bootable})
		}
		out = append(out, j)
	}
	return out, nil
}

func readTable(ctx context.Context, r *repo.Repository, d *repo.Disk) (*part.Table, error) {
	t, err := part.Read(restore.DiskReader(ctx, r, d), d.Size, d.SectorSize)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", d.Name, err)
	}
	return t, nil
}

// partitionRange returns the byte range of partition n of disk d.
func partitionRange(ctx context.Context, r *repo.Repository, d *repo.Disk, n int) (start, length int64, err error) {
	t, err := readTable(ctx, r, d)
	if err != nil {
		return 0, 0, err
	}
	var nums []string
	for _, p := range t.Partitions {
		if p.Number == n {
			if p.Extended {
				return 0, 0, fmt.Errorf("partition %d of disk %s is an extended partition: it holds the logical partitions, not a filesystem", n, d.Name)
			}
			return p.Start, p.Size, nil
		}
		nums = append(nums, fmt.Sprint(p.Number))
	}
	if len(nums) == 0 {
		return 0, 0, fmt.Errorf("disk %s has no partitions (partition table: %s)", d.Name, t.Type)
	}
	return 0, 0, withHint(fmt.Errorf("disk %s has no partition %d", d.Name, n), "its partitions: %s (see 'bunker volumes')", strings.Join(nums, ", "))
}
