package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repo"
)

// pruneJSON is the --json document of prune (and of forget --prune).
type pruneJSON struct {
	MessageType string        `json:"message_type"`
	DryRun      bool          `json:"dry_run"`
	Plan        *prune.Plan   `json:"plan"`
	Result      *prune.Result `json:"result,omitempty"`
	text        string
}

func newPruneCmd(g *globalOptions) *cobra.Command {
	var (
		maxUnused string
		dryRun    bool
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove data that no snapshot references",
		Long: `Remove the data that no snapshot references any more (after 'bunker forget').
Packs with nothing referenced are deleted. Packs that are partly referenced
are rewritten, the most wasteful first, until the unreferenced data left is
at most --max-unused: a percentage of the repository (default 5%), a size
(500M) or 'unlimited' (never rewrite). Lower values free more space and
rewrite more data.

prune holds the exclusive lock. It writes the new packs and the new index
before it deletes anything, so an interruption at any point leaves a
repository that 'bunker check' accepts, and running prune again finishes the
job. --dry-run prints the plan: packs to delete and to rewrite, bytes freed
and bytes to rewrite (-v lists the packs); it takes only a shared lock.

prune also merges the run history files (history/) into one when there are
more than 16, and removes temporary files older than an hour that
interrupted writers left behind.` + repoExitStatus(),
		Example: `  bunker prune --dry-run
  bunker prune
  bunker prune --max-unused 0%       # rewrite every partly used pack
  bunker prune --max-unused unlimited  # only delete unused packs`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := prune.ParseLimit(maxUnused)
			if err != nil {
				return usageErrorf("--max-unused: %v", err)
			}
			return g.withRepoRetry(cmd.Context(), !dryRun, func(r *repo.Repository) error {
				doc, err := runPrune(cmd.Context(), g, r, limit, dryRun)
				if err != nil {
					return err
				}
				return g.quietDocument(doc, func(w io.Writer) error { return printPrune(w, doc) })
			})
		},
	}
	cmd.Flags().StringVar(&maxUnused, "max-unused", prune.DefaultMaxUnused.String(), "unused data to tolerate (`limit`: 5%, 500M, unlimited)")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "print the plan without changing anything")
	return cmd
}

// runPrune plans and (unless dryRun) executes a prune; the caller holds the
// exclusive lock.
func runPrune(ctx context.Context, g *globalOptions, r *repo.Repository, limit prune.Limit, dryRun bool) (*pruneJSON, error) {
	prog := g.newItemProgress("prune")
	defer prog.done()
	opts := prune.Options{MaxUnused: limit, Progress: itemProgress{prog}}
	plan, err := prune.NewPlan(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	// Empty lists are [] in JSON, not null.
	if plan.Delete == nil {
		plan.Delete = []prune.Pack{}
	}
	if plan.Repack == nil {
		plan.Repack = []prune.Pack{}
	}
	doc := &pruneJSON{MessageType: "summary", DryRun: dryRun, Plan: plan, text: plan.String()}
	if g.Verbose > 0 {
		var b strings.Builder
		for _, list := range [][]prune.Pack{plan.Delete, plan.Repack} {
			for _, pk := range list {
				what := string(pk.Action)
				if pk.Unindexed {
					what += " (unindexed)"
				}
				fmt.Fprintf(&b, "%-20s pack %s  %s, %d of %d blobs used\n", what, pk.ID.Str(), humanize.IBytes(uint64(pk.Size)), pk.UsedBlobs, pk.Blobs)
			}
		}
		doc.text = b.String() + doc.text
	}
	if dryRun || plan.Empty() {
		return doc, nil
	}
	res, err := plan.Execute(ctx)
	if err != nil {
		return nil, withHint(fmt.Errorf("prune stopped: %w", err), "the repository is intact; run 'bunker prune' again to finish")
	}
	doc.Result = res
	return doc, nil
}

func printPrune(w io.Writer, doc *pruneJSON) error {
	if _, err := io.WriteString(w, doc.text); err != nil {
		return err
	}
	switch {
	case doc.Plan.Empty():
		_, err := fmt.Fprintln(w, "nothing to prune")
		return err
	case doc.DryRun:
		_, err := fmt.Fprintln(w, "dry run: nothing was changed")
		return err
	}
	res := doc.Result
	_, err := fmt.Fprintf(w, "deleted %d pack%s (%s), wrote %d new pack%s (%s), replaced %d index file%s\n",
		res.PacksDeleted, plural(res.PacksDeleted), humanize.IBytes(uint64(res.BytesDeleted)),
		res.PacksWritten, plural(res.PacksWritten), humanize.IBytes(uint64(res.BytesWritten)),
		res.IndexFilesRemoved, plural(res.IndexFilesRemoved))
	if err == nil && res.HistoryFilesMerged > 0 {
		_, err = fmt.Fprintf(w, "merged %d history files into one (%d records)\n", res.HistoryFilesMerged, res.HistoryRecords)
	}
	if err == nil && res.HistoryFilesDamaged > 0 {
		_, err = fmt.Fprintf(w, "left %d damaged history file%s alone (see 'bunker check')\n", res.HistoryFilesDamaged, plural(res.HistoryFilesDamaged))
	}
	if err == nil && res.TempFilesRemoved > 0 {
		_, err = fmt.Fprintf(w, "removed %d temporary file%s (%s) left by interrupted writers\n", res.TempFilesRemoved, plural(res.TempFilesRemoved), humanize.IBytes(uint64(res.TempBytesRemoved)))
	}
	return err
}
