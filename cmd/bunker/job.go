package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/backup"
	"github.com/bunkerbackup/bunker/drill"
	"github.com/bunkerbackup/bunker/history"
	"github.com/bunkerbackup/bunker/job"
	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/retention"
	"github.com/bunkerbackup/bunker/schedule"
)

// jobConfigPath is the job file in use: the one resolve() read, else the
// first default location.
func (g *globalOptions) jobConfigPath() string {
	if g.ConfigFile != "" {
		return g.ConfigFile
	}
	p, _ := g.configPath()
	return p
}

// loadJobs reads and validates the job file.
func (g *globalOptions) loadJobs() (*job.Config, error) {
	p := g.jobConfigPath()
	cfg, err := job.Load(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, withHint(err, "write one with 'bunker config example > %s' and edit it, or name it with --config", p)
	}
	return cfg, err
}

// loadJob loads the job file and returns the named job, or a usage error
// listing the names.
func (g *globalOptions) loadJob(name string) (*job.Job, error) {
	cfg, err := g.loadJobs()
	if err != nil {
		return nil, err
	}
	j, ok := cfg.Job(name)
	if !ok {
		return nil, usageErrorf("no job %q in %s (jobs: %s)", name, cfg.File, strings.Join(cfg.Names(), ", "))
	}
	return j, nil
}

// stateDir is where history, job locks and the user schedule manifest live.
func stateDir() string {
	home, _ := os.UserHomeDir()
	return history.StateDir(os.Geteuid(), os.Getenv("XDG_STATE_HOME"), home)
}

// historyLog is the local history file; its records name this host.
func historyLog() *history.Log {
	l := history.Open(filepath.Join(stateDir(), history.FileName))
	l.Host, _ = os.Hostname()
	return l
}

func newJobCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "List, validate and run the jobs of the config file",
		Long: `Jobs are named backups described in the config file (see 'bunker config
example'): sources, tags, schedule, retention, hooks and notifications.` + exitStatusHelp(),
		Example: `  bunker job list
  bunker job validate --config /etc/bunker/config.yaml
  bunker job run nightly`,
		Args: noArgs,
	}
	cmd.AddCommand(newJobListCmd(g), newJobValidateCmd(g), newJobRunCmd(g), newJobSkippedCmd(g), newJobNotifyFailureCmd(g))
	return cmd
}

type jobJSON struct {
	Name     string   `json:"name"`
	Enabled  bool     `json:"enabled"`
	Schedule string   `json:"schedule,omitempty"`
	Next     string   `json:"next_run,omitempty"`
	Paths    []string `json:"paths,omitempty"`
	Disks    []string `json:"disks,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

func newJobListCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the jobs with their schedule and state",
		Long:    `List the jobs of the config file: enabled or not, schedule, next run (in local time, as in 'bunker status') and sources.` + exitStatusHelp(),
		Example: "  bunker job list\n  bunker job list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadJobs()
			if err != nil {
				return err
			}
			now := time.Now()
			docs := make([]jobJSON, 0, len(cfg.Jobs))
			rows := make([][]string, 0, len(cfg.Jobs))
			for _, j := range cfg.Jobs {
				d := jobJSON{Name: j.Name, Enabled: j.Enabled, Paths: j.Paths, Tags: j.Tags}
				for _, dk := range j.Disks {
					d.Disks = append(d.Disks, dk.Path)
				}
				sched, next := "-", "-"
				if j.Schedule != nil {
					d.Schedule, sched = j.Schedule.String(), j.Schedule.String()
					if n := j.Schedule.Next(now); !n.IsZero() && j.Enabled {
						d.Next, next = n.Format(time.RFC3339), n.Local().Format("2006-01-02 15:04")
					}
				}
				state := "enabled"
				if !j.Enabled {
					state = "disabled"
				}
				sources := strings.Join(append(append([]string{}, j.Paths...), d.Disks...), " ")
				rows = append(rows, []string{j.Name, state, sched, next, sources})
				docs = append(docs, d)
			}
			return g.out.document(docs, func(w io.Writer) error {
				return table(w, []string{"JOB", "STATE", "SCHEDULE", "NEXT RUN", "SOURCES"}, rows)
			})
		},
	}
}

func newJobValidateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the config file without touching the repository",
		Long: `Read the config file and report every problem with its file, line and key:
unknown keys, bad values, duplicate jobs, jobs without sources, schedules
that do not parse. Nothing else is read or written.` + exitStatusHelp(),
		Example: "  bunker job validate\n  bunker job validate --config ./config.yaml",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadJobs()
			if err != nil {
				return err
			}
			g.out.printf("%s: %s, valid\n", cfg.File, count(len(cfg.Jobs), "job"))
			return nil
		},
	}
}

// newConfigExampleCmd is "bunker config example".
func newConfigExampleCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "example",
		Short:   "Print a commented example job file",
		Long:    `Print a commented config file with a job of each kind; it passes 'bunker job validate'.` + exitStatusHelp(),
		Example: "  bunker config example > /etc/bunker/config.yaml",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(g.stdout, job.Example())
			return err
		},
	}
}

// jobRunJSON is the summary line of "job run --json".
type jobRunJSON struct {
	MessageType string   `json:"message_type"`
	Job         string   `json:"job"`
	Status      string   `json:"status"`
	Error       string   `json:"error,omitempty"`
	SnapshotID  string   `json:"snapshot_id,omitempty"`
	DataAdded   int64    `json:"data_added"`
	Duration    float64  `json:"total_duration"`
	Warnings    []string `json:"warnings,omitempty"`
}

// defaultJobRetryLock is how long a job run waits for a repository lock
// held by another process when --retry-lock is not given.
const defaultJobRetryLock = time.Hour

func newJobRunCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "run JOB",
		Short: "Run a job now (what the timers and cron lines call)",
		Long: `Run a job: take the job's lock (a run that finds it held is recorded as
skipped and exits 0), run the before hooks, back up, apply the job's
retention, prune, check and drill when due, run the after and on-success or
on-failure hooks, notify, and record every step in the history.

A repository locked by another process (another job's backup while this
job's retention needs the exclusive lock) is waited for: up to
--retry-lock, which defaults to 1h for job runs (scheduled jobs sharing a
repository must not fail because their times overlap); --retry-lock 0s
fails the step with exit 11 at once instead.

A disabled job does nothing and says so.` + repoExitStatus(helpPartial),
		Example: "  bunker job run nightly\n  bunker job run vm-disks --json\n  bunker job run nightly --retry-lock 30m",
		Args:    exactArgs(1, "a job name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f := cmd.Flags().Lookup("retry-lock"); f != nil && !f.Changed {
				g.RetryLock = defaultJobRetryLock
			}
			j, err := g.loadJob(args[0])
			if err != nil {
				return err
			}
			jr := &jobRepo{g: g}
			defer jr.close()
			runner := &job.Runner{
				StateDir: stateDir(),
				History:  historyLog(),
				Steps:    jr.steps(),
				Report:   func(msg string) { g.out.verbosef(1, "%s", msg) },
			}
			out := runner.Run(cmd.Context(), j)
			// The run's records go to the repository it used as well.
			g.saveRepoHistory(cmd.Context(), jr.r, out.Records)
			return g.reportJob(j, out)
		},
	}
}

// reportJob prints a job run's hooks, warnings and outcome (a summary line
// with --json) and returns the error of a run that did not succeed.
func (g *globalOptions) reportJob(j *job.Job, out job.Outcome) error {
	for _, h := range out.Hooks {
		if h.Err != nil {
			g.out.warn("hook", h.Hook.Command, fmt.Errorf("%v%s", h.Err, indentOutput(h.Output)))
		} else {
			g.out.verbosef(1, "hook %q: ok (%s)", h.Hook.Command, history.FormatDuration(h.Duration))
		}
	}
	for _, w := range out.Warnings {
		g.out.warn("job", j.Name, w)
	}
	if g.JSON {
		doc := jobRunJSON{MessageType: "summary", Job: j.Name, Status: out.Status, SnapshotID: out.Snapshot,
			DataAdded: out.Bytes, Duration: out.End.Sub(out.Start).Seconds()}
		if out.Err != nil {
			doc.Error = out.Err.Error()
		}
		for _, w := range out.Warnings {
			doc.Warnings = append(doc.Warnings, w.Error())
		}
		g.out.jsonLine(doc)
	}
	switch out.Status {
	case string(history.StatusSkipped):
		g.out.printf("job %s skipped: %v\n", j.Name, out.Err)
		return nil
	case "success":
		g.out.printf("job %s succeeded in %s\n", j.Name, history.FormatDuration(out.End.Sub(out.Start)))
		return nil
	case "partial":
		return fmt.Errorf("job %s: %w", j.Name, out.Err)
	}
	return fmt.Errorf("job %s failed: %w", j.Name, out.Err)
}

func newJobSkippedCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "skipped JOB",
		Short: "Record a start skipped because the job was still running (run by cron lines)",
		Long: `Called by the cron lines of 'bunker schedule install' when flock finds the
job's previous run still holding the lock: the start is recorded in the
history as skipped, as 'bunker job run' records a start that finds the job
running, and the command exits 0.` + exitStatusHelp(),
		Example: "  bunker job skipped nightly",
		Args:    exactArgs(1, "a job name"),
		Hidden:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := g.loadJob(args[0])
			if err != nil {
				return err
			}
			runner := &job.Runner{
				StateDir: stateDir(),
				History:  historyLog(),
				Report:   func(msg string) { g.out.verbosef(1, "%s", msg) },
			}
			return g.reportJob(j, runner.Skipped(cmd.Context(), j))
		},
	}
}

func indentOutput(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "\n    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func newJobNotifyFailureCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "notify-failure UNIT",
		Short: "Notify that a job's systemd unit failed (run by bunker-notify@.service)",
		Long: `Called by systemd through OnFailure= with the failed unit's name. When the
run already recorded its failure and notified, nothing more is sent;
otherwise (bunker was killed, timed out or crashed) the job's notify command
and ping URL are told that it failed.` + exitStatusHelp(),
		Example: "  bunker job notify-failure bunker-nightly.service",
		Args:    exactArgs(1, "a unit name"),
		Hidden:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, ok := schedule.JobFromUnit(args[0])
			if !ok {
				return usageErrorf("%q is not a bunker job unit", args[0])
			}
			j, err := g.loadJob(name)
			if err != nil {
				return err
			}
			now := time.Now()
			res, err := historyLog().ReadAll(cmd.Context())
			if err != nil {
				return err
			}
			if !job.FailureNoticeNeeded(res.Records, j.Name, now) {
				g.out.verbosef(1, "job %s already reported its failure", j.Name)
				return nil
			}
			n := job.Notifier{Notify: j.Notify}
			errs := n.Finish(cmd.Context(), job.RunInfo{Job: j.Name, Status: job.StatusFailed, End: now,
				Error: "systemd unit " + args[0] + " failed (see journalctl -u " + args[0] + ")"})
			for _, err := range errs {
				g.out.warn("notify", j.Name, err)
			}
			if len(errs) > 0 {
				return fmt.Errorf("job %s: could not send the failure notice", j.Name)
			}
			return nil
		},
	}
}

// jobRepo opens the repository on first use and keeps it for a run's steps.
type jobRepo struct {
	g *globalOptions
	r *repo.Repository
}

func (jr *jobRepo) open(ctx context.Context) (*repo.Repository, error) {
	if jr.r != nil {
		return jr.r, nil
	}
	r, err := jr.g.openRepo(ctx)
	if err != nil {
		return nil, err
	}
	jr.r = r
	return r, nil
}

func (jr *jobRepo) close() {
	if jr.r != nil {
		jr.r.Close()
	}
}

// locked runs fn with the repository locked, waiting up to --retry-lock
// for a lock another process holds (another job's backup, say).
func (jr *jobRepo) locked(ctx context.Context, exclusive bool, fn func(r *repo.Repository) error) error {
	r, err := jr.open(ctx)
	if err != nil {
		return err
	}
	l, err := jr.g.lock(ctx, r, exclusive)
	if err != nil {
		return err
	}
	defer l.Unlock()
	return fn(r)
}

// jobSnapshots lists the job's snapshots, oldest first.
func jobSnapshots(ctx context.Context, r *repo.Repository, name string) ([]*repo.Snapshot, error) {
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var out []*repo.Snapshot
	for _, sn := range all {
		if sn.Job == name {
			out = append(out, sn)
		}
	}
	slices.SortFunc(out, func(a, b *repo.Snapshot) int { return a.Time.Compare(b.Time) })
	return out, nil
}

func (jr *jobRepo) steps() job.Steps {
	g := jr.g
	return job.Steps{
		Backup: func(ctx context.Context, j *job.Job) (job.BackupResult, error) {
			var res job.BackupResult
			err := jr.locked(ctx, false, func(r *repo.Repository) error {
				res.Target = r.Backend().Location()
				if err := r.UseCompression(j.Compression); err != nil {
					return err
				}
				src := backup.Sources{Paths: j.Paths}
				for _, d := range j.Disks {
					src.Disks = append(src.Disks, backup.DiskSource{Path: d.Path, Name: d.Name, Format: d.Format})
				}
				opts := backup.Options{Tags: j.Tags, Job: j.Name, Excludes: j.Excludes, ProgramVersion: "bunker " + programVersion()}
				prev, err := jobSnapshots(ctx, r, j.Name)
				if err != nil {
					return err
				}
				before := make(map[repo.ID]bool, len(prev))
				for _, sn := range prev {
					before[sn.ID] = true
				}
				if len(prev) > 0 {
					opts.Parent = prev[len(prev)-1]
				}
				berr := g.runBackup(ctx, r, src, opts)
				var incomplete *incompleteError
				if berr != nil && !errors.As(berr, &incomplete) {
					return berr
				}
				// The snapshot just written is the job's one not there before.
				after, err := jobSnapshots(ctx, r, j.Name)
				if err != nil {
					return err
				}
				res.Snapshots = len(after)
				for _, sn := range after {
					if !before[sn.ID] {
						res.Snapshot = sn.ID.String()
						if sn.Summary != nil {
							res.Bytes = int64(sn.Summary.DataAdded)
						}
					}
				}
				res.Partial = berr != nil
				return berr
			})
			return res, err
		},
		Forget: func(ctx context.Context, j *job.Job) error {
			return jr.locked(ctx, true, func(r *repo.Repository) error {
				snaps, err := jobSnapshots(ctx, r, j.Name)
				if err != nil {
					return err
				}
				opts, ps, err := retentionOptions(ctx, r, retention.GroupBy{})
				if err != nil {
					return err
				}
				res, err := retention.Apply(snaps, j.Retention, opts)
				if err != nil {
					return err
				}
				rm := res.Remove()
				if err := removeSnapshots(ctx, r, rm, ps); err != nil {
					return err
				}
				g.out.verbosef(1, "retention (%s): kept %d, removed %s", j.Retention, len(res.Keep()), count(len(rm), "snapshot"))
				return nil
			})
		},
		Prune: func(ctx context.Context, j *job.Job) error {
			return jr.locked(ctx, true, func(r *repo.Repository) error {
				doc, err := runPrune(ctx, g, r, prune.Limit{}, false)
				if err == nil && doc != nil && doc.Result != nil {
					g.out.verbosef(1, "pruned: %s deleted, %d written", count(doc.Result.PacksDeleted, "pack"), doc.Result.PacksWritten)
				}
				return err
			})
		},
		Drill: func(ctx context.Context, j *job.Job) (job.DrillResult, error) {
			var res job.DrillResult
			err := jr.locked(ctx, false, func(r *repo.Repository) error {
				snaps, err := jobSnapshots(ctx, r, j.Name)
				if err != nil {
					return err
				}
				if len(snaps) == 0 {
					return fmt.Errorf("drill: job %s has no snapshot", j.Name)
				}
				sn := snaps[len(snaps)-1]
				res.Snapshot = sn.ID.String()
				rep, err := drill.Run(ctx, r, sn, drill.Options{})
				if err != nil {
					return err
				}
				res.Bytes, res.Restore = rep.Bytes, rep.Restore
				if !rep.OK() {
					return fmt.Errorf("drill of snapshot %s failed: %s", sn.ID.Str(), strings.Join(rep.Failures(), "; "))
				}
				g.out.verbosef(1, "drill of snapshot %s: restored in %s, verified in %s", sn.ID.Str(), rep.Restore.Round(time.Millisecond), rep.Verify.Round(time.Millisecond))
				return nil
			})
			return res, err
		},
		Check: func(ctx context.Context, j *job.Job) error {
			return jr.locked(ctx, false, func(r *repo.Repository) error {
				res, err := check.Check(ctx, r, check.Options{})
				if err != nil {
					return err
				}
				if !res.OK() {
					return fmt.Errorf("check found %s; run 'bunker check' for details", count(res.Errors(), "error"))
				}
				return nil
			})
		},
	}
}
