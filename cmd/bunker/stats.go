package main

import (
	"fmt"
	"io"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/check"
)

type statsJSON struct {
	Snapshots    int                   `json:"snapshots"`
	PerSnapshot  []check.SnapshotStats `json:"per_snapshot,omitempty"`
	LogicalBytes uint64                `json:"logical_bytes"` // files and disks as the snapshots hold them, holes included
	// Referenced is what the selected snapshots occupy after deduplication;
	// Repository is every indexed blob.
	Referenced check.BlobStats `json:"referenced"`
	Repository check.BlobStats `json:"repository"`
	Packs      int             `json:"packs"`
	PackBytes  uint64          `json:"pack_bytes"`
	// Unused is data no snapshot references; PruneFrees is what 'bunker
	// prune' with the default --max-unused would free.
	UnusedBytes int64 `json:"unused_bytes"`
	PruneFrees  int64 `json:"prune_frees"`
}

func newStatsCmd(g *globalOptions) *cobra.Command {
	var (
		filter      snapshotFilter
		perSnapshot bool
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show how much the repository stores",
		Long: `Show the number of snapshots, their logical size (what a restore of all of
them would write, holes included), the unique data they reference after
deduplication, what the repository occupies after compression and
encryption, and how much 'bunker prune' would free.` + repoExitStatus(),
		Example: `  bunker stats -r /srv/backup
  bunker stats --per-snapshot
  bunker stats --host web1 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				list, err := filterSnapshots(ctx, r, filter)
				if err != nil {
					return err
				}
				// Both walk the snapshots' trees; they only read, so they
				// run side by side.
				var (
					st   *check.Stats
					plan *prune.Plan
				)
				wg, wctx := errgroup.WithContext(ctx)
				wg.Go(func() (err error) {
					st, err = check.ComputeStats(wctx, r, list)
					return err
				})
				wg.Go(func() (err error) {
					plan, err = prune.NewPlan(wctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
					return err
				})
				if err := wg.Wait(); err != nil {
					return err
				}
				s := statsJSON{
					Snapshots: len(list), LogicalBytes: st.LogicalBytes,
					Referenced: st.Referenced, Repository: st.Repository,
					Packs: st.Packs, PackBytes: st.PackBytes,
					UnusedBytes: plan.UnusedBytes, PruneFrees: plan.BytesFreed,
				}
				if perSnapshot {
					s.PerSnapshot = st.Snapshots
				}
				return g.out.document(s, func(w io.Writer) error { return printStats(w, s) })
			})
		},
	}
	filter.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&perSnapshot, "per-snapshot", false, "also show each snapshot's time, files, disks and logical size")
	return cmd
}

// blobCounts says "12 data and 3 tree blobs", "1 data blob and 1 tree blob".
func blobCounts(b check.BlobStats) string {
	if b.DataBlobs == 1 || b.TreeBlobs == 1 {
		return count(b.DataBlobs, "data blob") + " and " + count(b.TreeBlobs, "tree blob")
	}
	return fmt.Sprintf("%d data and %d tree blobs", b.DataBlobs, b.TreeBlobs)
}

func printStats(w io.Writer, s statsJSON) error {
	ratio := 0.0
	if s.Repository.StoredBytes > 0 {
		ratio = float64(s.LogicalBytes) / float64(s.Repository.StoredBytes)
	}
	b := func(n uint64) string { return humanize.IBytes(n) }
	rows := [][]string{
		{"snapshots:", fmt.Sprint(s.Snapshots)},
		{"logical size:", b(s.LogicalBytes)},
		{"referenced:", fmt.Sprintf("%s in %s, %s stored", b(s.Referenced.PlainBytes), blobCounts(s.Referenced), b(s.Referenced.StoredBytes))},
		{"unique data:", fmt.Sprintf("%s in %s", b(s.Repository.PlainBytes), blobCounts(s.Repository))},
		{"stored:", fmt.Sprintf("%s (%s compressed)", b(s.Repository.StoredBytes), count(s.Repository.Compressed, "blob"))},
		{"pack files:", fmt.Sprintf("%d, %s", s.Packs, b(s.PackBytes))},
		{"unused data:", fmt.Sprintf("%s (prune would free %s)", b(uint64(s.UnusedBytes)), b(uint64(max(s.PruneFrees, 0))))},
		{"space saving:", fmt.Sprintf("%.2fx (logical size / stored)", ratio)},
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%-14s %s\n", r[0], r[1]); err != nil {
			return err
		}
	}
	if len(s.PerSnapshot) > 0 {
		if _, err := fmt.Fprintf(w, "\n%-10s %-19s %8s %8s %6s %12s\n", "ID", "Time", "Files", "Dirs", "Disks", "Logical"); err != nil {
			return err
		}
		for _, p := range s.PerSnapshot {
			if _, err := fmt.Fprintf(w, "%-10s %-19s %8d %8d %6d %12s\n", p.ID.Str(), p.Time.Local().Format(timeFormat), p.Files, p.Dirs, p.Disks, b(p.LogicalBytes)); err != nil {
				return err
			}
		}
	}
	return nil
}
