package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/history"
	"github.com/bunkerbackup/bunker/repo"
)

func newHistoryCmd(g *globalOptions) *cobra.Command {
	var (
		since, jobName, from string
		kinds                []string
		csv                  bool
		limit                int
	)
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the record of job runs, backups, restores and maintenance",
		Long: `Show the history of runs, newest first: by default the last 7 days.

Every job run, backup, restore, forget, prune, check and drill is recorded
in a local state file ($XDG_STATE_HOME/bunker/history.jsonl, or
/var/lib/bunker/history.jsonl for root) and, when it opened the repository,
in the repository too (history/, encrypted), so every host that uses the
repository sees what ran against it.

--from chooses the source: 'local' (the default: this host's file; no
password needed, works when the repository is unreachable), 'repo' (the
repository's records of every host; needs the password) or 'all' (both,
each run shown once). The table of 'repo' and 'all' has a HOST column.` + exitStatusHelp(helpNoRepo, helpPassword),
		Example: `  bunker history
  bunker history --since 30d --job nightly
  bunker history --since 2026-11-01 --csv > runs.csv
  bunker history --from repo -r /srv/backup --kind backup
  bunker history --json | jq '.[] | select(.status=="failed")'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if csv && g.JSON {
				return usageErrorf("--csv and --json are mutually exclusive")
			}
			if from != "local" && from != "repo" && from != "all" {
				return usageErrorf("--from %q: use local, repo or all", from)
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
			var sources [][]history.Record
			where := "locally"
			if from != "local" {
				recs, loc, err := g.repoHistory(cmd.Context())
				if err != nil {
					return err
				}
				sources = append(sources, recs)
				where = "in repository " + loc
			}
			if from != "repo" {
				log := historyLog()
				res, err := log.ReadAll(cmd.Context())
				if err != nil {
					return err
				}
				if res.Bad > 0 {
					g.out.warn("history", log.Path(), fmt.Errorf("%s skipped (%s)", count(res.Bad, "damaged line"), res.FirstBad))
				}
				sources = append(sources, res.Records)
			}
			recs := history.Filter(history.Merge(sources...), q)
			switch {
			case csv:
				return history.WriteCSV(g.stdout, recs)
			case g.JSON:
				return history.WriteJSON(g.stdout, recs)
			}
			if len(recs) == 0 {
				g.out.printf("no runs recorded %s since %s\n", where, q.Since.Local().Format("2006-01-02 15:04"))
				return nil
			}
			if from == "local" {
				return history.WriteTable(g.stdout, recs, time.Local)
			}
			return history.WriteHostTable(g.stdout, recs, time.Local)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "7d", "show runs since `when`: a duration (36h, 7d, 2w), a date, an RFC 3339 time, or all")
	f.StringVar(&jobName, "job", "", "only runs of job `name`")
	f.StringArrayVar(&kinds, "kind", nil, "only runs of `kind` (job, backup, restore, forget, prune, check, drill; repeatable)")
	f.StringVar(&from, "from", "local", "read the history from `source`: local (this host's file), repo (the repository, every host) or all")
	f.BoolVar(&csv, "csv", false, "print CSV")
	f.IntVar(&limit, "limit", 0, "show at most `n` runs")
	return cmd
}

// repoHistory reads the records of every history file of the repository
// (no lock is needed: the files are immutable). Damaged files and records
// are warnings.
func (g *globalOptions) repoHistory(ctx context.Context) ([]history.Record, string, error) {
	r, err := g.openRepo(ctx)
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	loc := r.Backend().Location()
	files, damaged, err := r.Histories(ctx)
	if err != nil {
		return nil, "", err
	}
	for _, d := range damaged {
		g.out.warn("history", "", fmt.Errorf("history/%s skipped: %w", d.ID, d.Err))
	}
	var recs []history.Record
	for _, f := range files {
		res := history.ParseRecords(f.Records)
		if res.Bad > 0 {
			g.out.warn("history", "", fmt.Errorf("history/%s: %s skipped (%s)", f.ID, count(res.Bad, "record"), res.FirstBad))
		}
		recs = append(recs, res.Records...)
	}
	return recs, loc, nil
}

func validHistoryKind(k history.Kind) bool {
	for _, v := range history.Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// recordRun records a command run outside a job (backup, restore, forget,
// prune, check, drill): success when err is nil, partial for a snapshot
// with unreadable sources, else failed. The record goes to the local
// history and to the repository the command opened, r (nil: none). A
// history that cannot be written is a warning, never the command's failure.
func (g *globalOptions) recordRun(ctx context.Context, r *repo.Repository, kind history.Kind, target string, start time.Time, snapshot string, bytes int64, took time.Duration, err error) {
	host, _ := os.Hostname()
	rec := history.Record{ID: history.NewID(), Host: host, Kind: kind, Target: target, Start: start, End: time.Now(),
		Duration: took, Status: history.StatusSuccess, Snapshot: snapshot, Bytes: bytes}
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
	g.saveRepoHistory(ctx, r, []history.Record{rec})
}

// saveRepoHistory stores the records of a run as one new history file in
// the repository the run used (nil: it opened none). It takes no lock: the
// file is new and named by its content. Nothing is written with --no-lock
// (read-only media); a failed write is a warning, shown only with -v when
// the repository is read-only.
func (g *globalOptions) saveRepoHistory(ctx context.Context, r *repo.Repository, recs []history.Record) {
	if r == nil || g.NoLock || len(recs) == 0 {
		return
	}
	host, _ := os.Hostname()
	raw := make([]json.RawMessage, 0, len(recs))
	for _, rec := range recs {
		if rec.ID == "" {
			rec.ID = history.NewID()
		}
		if rec.Host == "" {
			rec.Host = host
		}
		b, err := history.FormatRecord(rec)
		if err != nil {
			g.out.warn("history", "", err)
			return
		}
		raw = append(raw, b)
	}
	_, err := r.SaveHistory(context.WithoutCancel(ctx), raw)
	switch {
	case err == nil:
	case lockNotWritable(err):
		if g.Verbose > 0 {
			g.out.warn("history", "", fmt.Errorf("run not recorded in the repository: %w", err))
		}
	default:
		g.out.warn("history", "", fmt.Errorf("run not recorded in the repository: %w", err))
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
	if target != "" && !strings.Contains(target, "://") {
		// A directory as an absolute path, not as typed: records are read
		// from other directories and hosts.
		if abs, err := filepath.Abs(target); err == nil {
			target = abs
		}
	}
	g.recordRun(ctx, g.opened, kind, target, start, g.runSnapshot, g.runBytes, g.runDuration, err)
}
