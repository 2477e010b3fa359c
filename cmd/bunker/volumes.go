package main

import (
	"context"
	"fmt"

	"github.com/bunkerbackup/bunker/repo"
)

// diskJSON describes a disk of a snapshot with its partitions.
type diskJSON struct {
	Name            string          `json:"name"`
	Source          string          `json:"source"`
	Format          string          `json:"format"`
	Size            int64           `json:"size"`
	SectorSize      int             `json:"sector_size"`
	DataBytes       int64           `json:"data_bytes"`
	Digest          string          `json:"digest"`
	CrashConsistent bool            `json:"crash_consistent,omitempty"`
	PartitionTable  string          `json:"partition_table,omitempty"`
	Partitions      []partitionJSON `json:"partitions,omitempty"`
}

type partitionJSON struct {
	Number     int    `json:"number"`
	Start      int64  `json:"start"`
	Size       int64  `json:"size"`
	Type       string `json:"type"`
	Name       string `json:"name,omitempty"`
	Filesystem string `json:"filesystem,omitempty"`
	Label      string `json:"label,omitempty"`
}

func describeDisks(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) ([]diskJSON, error) {
	var out []diskJSON
	for _, d := range sn.Disks {
		out = append(out, diskJSON{Name: d.Name, Source: d.Source, Format: d.Format, Size: d.Size, SectorSize: d.SectorSize,
			DataBytes: d.DataBytes, Digest: d.Digest, CrashConsistent: d.CrashConsistent})
	}
	return out, nil
}

func partitionRange(ctx context.Context, r *repo.Repository, d *repo.Disk, n int) (start, length int64, err error) {
	return 0, 0, fmt.Errorf("partition %d of disk %s: partition tables are not read yet", n, d.Name)
}
