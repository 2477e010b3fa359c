package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/history"
)

func newHistoryCmd(g *globalOptions) *cobra.Command {
	var (
		since, jobName string
		kinds          []string
		csv            bool
		limit          int
	)
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the local record of job runs, backups, restores and maintenance",
		Long: `Show the history of runs kept in the local state file
($XDG_STATE_HOME/bunker/history.jsonl, or /var/lib/bunker/history.jsonl for
root), newest first: by default the last 7 days.` + exitStatusHelp(),
		Example: `  bunker history
  bunker history --since 30d --job nightly
  bunker history --since 2026-11-01 --csv > runs.csv
  bunker history --json | jq '.[] | select(.status=="failed")'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if csv && g.JSON {
				return usageErrorf("--csv and --json are mutually exclusive")
			}
			now := time.Now()
			q := history.Query{Job: jobName, Limit: limit}
			if since != "" && since != "all" {
				t, err := history.ParseSince(since, now)
				if err != nil {
					return usageErrorf("--since: %v", err)
				}
				q.Since = t
			}
			for _, k := range kinds {
				for _, s := range strings.Split(k, ",") {
					kind := history.Kind(strings.TrimSpace(s))
					if !validHistoryKind(kind) {
						return usageErrorf("--kind %q: use job, backup, restore, forget, prune, check or drill", s)
					}
					q.Kinds = append(q.Kinds, kind)
				}
			}
			log := historyLog()
			recs, res, err := log.Query(cmd.Context(), q)
			if err != nil {
				return err
			}
			if res.Bad > 0 {
				g.out.warn("history", log.Path(), fmt.Errorf("%d damaged line(s) skipped (%s)", res.Bad, res.FirstBad))
			}
			switch {
			case csv:
				return history.WriteCSV(g.stdout, recs)
			case g.JSON:
				return history.WriteJSON(g.stdout, recs)
			}
			if len(recs) == 0 {
				g.out.printf("no runs recorded since %s\n", q.Since.Local().Format("2006-01-02 15:04"))
				return nil
			}
			return history.WriteTable(g.stdout, recs, time.Local)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "7d", "show runs since `when`: a duration (36h, 7d, 2w), a date, an RFC 3339 time, or all")
	f.StringVar(&jobName, "job", "", "only runs of job `name`")
	f.StringArrayVar(&kinds, "kind", nil, "only runs of `kind` (job, backup, restore, forget, prune, check, drill; repeatable)")
	f.BoolVar(&csv, "csv", false, "print CSV")
	f.IntVar(&limit, "limit", 0, "show at most `n` runs")
	return cmd
}

func validHistoryKind(k history.Kind) bool {
	for _, v := range history.Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// recordRun appends a history record for a command run outside a job
// (backup, restore, forget, prune, check, drill): success when err is nil,
// partial for a snapshot with unreadable sources, else failed. A history
// that cannot be written is a warning, never the command's failure.
func (g *globalOptions) recordRun(ctx context.Context, kind history.Kind, target string, start time.Time, snapshot string, bytes int64, err error) {
	rec := history.Record{Kind: kind, Target: target, Start: start, End: time.Now(), Status: history.StatusSuccess,
		Snapshot: snapshot, Bytes: bytes}
	var incomplete *incompleteError
	switch {
	case err == nil:
	case errors.As(err, &incomplete):
		rec.Status, rec.Error = history.StatusPartial, err.Error()
	default:
		rec.Status, rec.Error = history.StatusFailed, err.Error()
	}
	if aerr := historyLog().Append(context.WithoutCancel(ctx), rec); aerr != nil {
		g.out.warn("history", "", aerr)
	}
}

// historyKinds are the top-level commands whose runs are recorded in the
// history (a job run records its own steps).
var historyKinds = map[string]history.Kind{
	"backup": history.KindBackup, "restore": history.KindRestore, "forget": history.KindForget,
	"prune": history.KindPrune, "check": history.KindCheck, "drill": history.KindDrill,
}

// recordCommand appends the history record of a finished top-level command
// that changes or verifies backups; dry runs and usage errors are not runs.
func (g *globalOptions) recordCommand(ctx context.Context, start time.Time, err error) {
	c := g.command
	if c == nil || !c.HasParent() || c.Parent().HasParent() {
		return
	}
	kind, ok := historyKinds[c.Name()]
	if !ok || exitCode(err) == exitUsage {
		return
	}
	if f := c.Flags().Lookup("dry-run"); f != nil && f.Value.String() == "true" {
		return
	}
	target := g.Repo
	if target == "" && g.v != nil {
		target = g.v.GetString("repository")
	}
	g.recordRun(ctx, kind, target, start, g.runSnapshot, g.runBytes, err)
}
