package main

import (
	"fmt"
	"io"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

type statsJSON struct {
	Snapshots       int    `json:"snapshots"`
	LogicalBytes    uint64 `json:"logical_bytes"` // files and disks as the snapshots hold them, holes included
	Packs           int    `json:"packs"`
	PackBytes       int64  `json:"pack_bytes"`
	DataBlobs       int    `json:"data_blobs"`
	TreeBlobs       int    `json:"tree_blobs"`
	PlainBytes      uint64 `json:"plain_bytes"`  // unique blob plaintext
	StoredBytes     uint64 `json:"stored_bytes"` // unique blobs compressed and sealed
	CompressedBlobs int    `json:"compressed_blobs"`
}

func newStatsCmd(g *globalOptions) *cobra.Command {
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show how much the repository stores",
		Long: `Show the number of snapshots, their logical size (what a restore of all of
them would write, holes included), the unique data after deduplication and
what it occupies after compression and encryption.` + repoExitStatus(),
		Example: `  bunker stats -r /srv/backup
  bunker stats --host web1 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				list, err := filterSnapshots(ctx, r, filter)
				if err != nil {
					return err
				}
				var s statsJSON
				s.Snapshots = len(list)
				for _, sn := range list {
					if sn.Summary != nil {
						s.LogicalBytes += sn.Summary.TotalBytesProcessed
					}
					for _, d := range sn.Disks {
						s.LogicalBytes += uint64(d.Size)
					}
				}
				packs, err := r.ListPacks(ctx)
				if err != nil {
					return err
				}
				s.Packs = len(packs)
				for _, n := range packs {
					s.PackBytes += n
				}
				err = r.EachBlob(func(pb repo.PackedBlob) error {
					if pb.Type == repo.DataBlob {
						s.DataBlobs++
					} else {
						s.TreeBlobs++
					}
					s.PlainBytes += uint64(pb.PlainLength)
					s.StoredBytes += uint64(pb.Length)
					if pb.Compressed {
						s.CompressedBlobs++
					}
					return nil
				})
				if err != nil {
					return err
				}
				return g.out.document(s, func(w io.Writer) error { return printStats(w, s) })
			})
		},
	}
	filter.addFlags(cmd.Flags())
	return cmd
}

func printStats(w io.Writer, s statsJSON) error {
	ratio := 0.0
	if s.StoredBytes > 0 {
		ratio = float64(s.LogicalBytes) / float64(s.StoredBytes)
	}
	rows := [][]string{
		{"snapshots:", fmt.Sprint(s.Snapshots)},
		{"logical size:", humanize.IBytes(s.LogicalBytes)},
		{"unique data:", fmt.Sprintf("%s in %d data and %d tree blobs", humanize.IBytes(s.PlainBytes), s.DataBlobs, s.TreeBlobs)},
		{"stored:", fmt.Sprintf("%s (%d blobs compressed)", humanize.IBytes(s.StoredBytes), s.CompressedBlobs)},
		{"pack files:", fmt.Sprintf("%d, %s", s.Packs, humanize.IBytes(uint64(s.PackBytes)))},
		{"space saving:", fmt.Sprintf("%.2fx (logical size / stored)", ratio)},
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%-14s %s\n", r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}
