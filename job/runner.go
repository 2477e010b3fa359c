package job

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/history"
)

// BackupResult is what the backup step reports.
type BackupResult struct {
	Snapshot string // id of the snapshot written ("" when none)
	Bytes    int64  // new data added
	// Partial: the snapshot was written but some sources could not be read.
	Partial bool
	// Snapshots is the job's snapshot count afterwards, when known.
	Snapshots int
	// Target names the repository for the history ("" = none).
	Target string
}

// Steps are the repository operations of a run, supplied by the caller
// (the CLI opens the repository). A nil step is not run. Every step gets
// the job and returns an error when it failed.
type Steps struct {
	Backup func(ctx context.Context, j *Job) (BackupResult, error)
	// Forget applies j.Retention; it runs only when the policy is not empty.
	Forget func(ctx context.Context, j *Job) error
	Prune  func(ctx context.Context, j *Job) error
	Check  func(ctx context.Context, j *Job) error
	// Drill restores the newest snapshot to scratch and verifies it.
	Drill func(ctx context.Context, j *Job) (DrillResult, error)
}

// DrillResult is what the drill step reports for the history.
type DrillResult struct {
	Snapshot string // id of the snapshot drilled
	Bytes    int64  // data restored
	// Restore is the restore time, recorded as the step's duration (the
	// recovery time to expect) instead of the time the whole step took.
	Restore time.Duration
}

// Runner runs jobs: lock, hooks, backup, retention, due follow-up tasks,
// notifications and history.
type Runner struct {
	// StateDir holds the job locks.
	StateDir string
	// History receives one record per step and one for the run (nil = none);
	// it also tells when prune, check and drill last succeeded.
	History *history.Log
	Steps   Steps
	// Now is the clock (nil = time.Now).
	Now func() time.Time
	// HTTPClient makes the pings (nil = http.DefaultClient).
	HTTPClient *http.Client
	// Report receives one line per step for the operator (nil = silent).
	Report func(msg string)
}

// Outcome is the result of a run.
type Outcome struct {
	Job    string
	Status string // success, partial, failed, skipped
	// Err is why the run failed or was skipped.
	Err      error
	Start    time.Time
	End      time.Time
	Snapshot string
	Bytes    int64
	// Hooks are the results of every hook run, in order.
	Hooks []HookResult
	// Records are the history records of the run (appended when History is set).
	Records []history.Record
	// Warnings are problems that did not change the status: a notification
	// that failed, a history that could not be written.
	Warnings []error
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) report(format string, args ...any) {
	if r.Report != nil {
		r.Report(fmt.Sprintf(format, args...))
	}
}

// ErrDisabled is the reason a disabled job is skipped.
var ErrDisabled = errors.New("job is disabled")

// Run runs one job. It never returns without an Outcome: failures are in
// Outcome.Err and Status. After, on-success and on-failure hooks and the
// notifications run even when ctx is cancelled (bounded by their timeouts),
// so a stopped service is started again.
func (r *Runner) Run(ctx context.Context, j *Job) Outcome {
	out := Outcome{Job: j.Name, Start: r.now()}
	notifier := Notifier{Notify: j.Notify, Client: r.HTTPClient}
	if !j.Enabled {
		r.report("job %s is disabled; nothing to do", j.Name)
		return r.finish(ctx, j, &out, history.StatusSkipped, ErrDisabled, notifier, false)
	}
	lock, err := TryLock(r.StateDir, j.Name)
	if errors.Is(err, ErrLocked) {
		r.report("job %s is already running; skipped", j.Name)
		return r.finish(ctx, j, &out, history.StatusSkipped, err, notifier, true)
	}
	if err != nil {
		return r.finish(ctx, j, &out, history.StatusFailed, err, notifier, true)
	}
	defer lock.Unlock()
	if err := notifier.Start(ctx); err != nil {
		out.Warnings = append(out.Warnings, err)
	}

	status, runErr := history.StatusSuccess, error(nil)
	fail := func(err error) {
		if runErr == nil {
			runErr = err
		}
		status = history.StatusFailed
	}
	env := []string{"BUNKER_JOB=" + j.Name}

	res, err := RunHooks(ctx, j.Hooks.Before, append(env, "BUNKER_HOOK=before"), false)
	out.Hooks = append(out.Hooks, res...)
	if err != nil {
		fail(fmt.Errorf("before hook: %w", err))
	}
	if runErr == nil && r.Steps.Backup != nil {
		r.report("backing up")
		start := r.now()
		br, err := r.Steps.Backup(ctx, j)
		rec := history.Record{Kind: history.KindBackup, Job: j.Name, Target: br.Target, Start: start, End: r.now(),
			Status: history.StatusSuccess, Bytes: br.Bytes, Snapshot: br.Snapshot, Snapshots: br.Snapshots}
		out.Snapshot, out.Bytes = br.Snapshot, br.Bytes
		switch {
		case err == nil && br.Partial:
			rec.Status, status = history.StatusPartial, history.StatusPartial
		case err == nil:
		case br.Partial && br.Snapshot != "":
			// The snapshot exists; some sources were unreadable.
			rec.Status, rec.Error, status, runErr = history.StatusPartial, err.Error(), history.StatusPartial, err
		default:
			rec.Status, rec.Error = history.StatusFailed, err.Error()
			fail(prefixed("backup", err))
		}
		r.append(ctx, &out, rec)
	}
	if status != history.StatusFailed {
		if !j.Retention.Empty() && r.Steps.Forget != nil {
			r.step(ctx, &out, j, history.KindForget, plain(func() error { return r.Steps.Forget(ctx, j) }), fail)
		}
		if r.Steps.Prune != nil && j.Prune.Due(r.lastGood(ctx, j.Name, history.KindPrune), out.Start) {
			r.step(ctx, &out, j, history.KindPrune, plain(func() error { return r.Steps.Prune(ctx, j) }), fail)
		}
		if r.Steps.Check != nil && j.Check.Due(r.lastGood(ctx, j.Name, history.KindCheck), out.Start) {
			r.step(ctx, &out, j, history.KindCheck, plain(func() error { return r.Steps.Check(ctx, j) }), fail)
		}
		if r.Steps.Drill != nil && j.Drill.Due(r.lastGood(ctx, j.Name, history.KindDrill), out.Start) {
			r.step(ctx, &out, j, history.KindDrill, func() (DrillResult, error) { return r.Steps.Drill(ctx, j) }, fail)
		}
	}

	// The rest runs even when the run was interrupted.
	hctx := context.WithoutCancel(ctx)
	if ctx.Err() != nil {
		fail(ctx.Err())
	}
	info := func() RunInfo {
		ri := RunInfo{Job: j.Name, Status: string(status), Start: out.Start, End: r.now(), Snapshot: out.Snapshot, Bytes: out.Bytes}
		if runErr != nil {
			ri.Error = runErr.Error()
		}
		return ri
	}
	res, err = RunHooks(hctx, j.Hooks.After, append(info().Env(), "BUNKER_HOOK=after"), true)
	out.Hooks = append(out.Hooks, res...)
	if err != nil {
		fail(fmt.Errorf("after hook: %w", err))
	}
	if status == history.StatusSuccess {
		res, err = RunHooks(hctx, j.Hooks.OnSuccess, append(info().Env(), "BUNKER_HOOK=on-success"), true)
		out.Hooks = append(out.Hooks, res...)
		if err != nil {
			fail(fmt.Errorf("on-success hook: %w", err))
		}
	}
	if status != history.StatusSuccess {
		res, err = RunHooks(hctx, j.Hooks.OnFailure, append(info().Env(), "BUNKER_HOOK=on-failure"), true)
		out.Hooks = append(out.Hooks, res...)
		if err != nil {
			out.Warnings = append(out.Warnings, fmt.Errorf("on-failure hook: %w", err))
		}
	}
	return r.finish(hctx, j, &out, status, runErr, notifier, true)
}

// prefixed names the step in an error unless the error already starts with it.
func prefixed(step string, err error) error {
	if strings.HasPrefix(err.Error(), step) {
		return err
	}
	return fmt.Errorf("%s: %w", step, err)
}

// plain adapts a step that reports nothing but its error.
func plain(fn func() error) func() (DrillResult, error) {
	return func() (DrillResult, error) { return DrillResult{}, fn() }
}

// step runs a follow-up task and records it, against the repository the
// backup used; what fn reports (a drill's snapshot, bytes and restore
// time) goes into the record.
func (r *Runner) step(ctx context.Context, out *Outcome, j *Job, kind history.Kind, fn func() (DrillResult, error), fail func(error)) {
	if ctx.Err() != nil {
		return
	}
	r.report("running %s", kind)
	start := r.now()
	res, err := fn()
	rec := history.Record{Kind: kind, Job: j.Name, Start: start, End: r.now(), Status: history.StatusSuccess,
		Duration: res.Restore, Snapshot: res.Snapshot, Bytes: res.Bytes}
	for _, br := range out.Records {
		if br.Kind == history.KindBackup {
			rec.Target = br.Target
		}
	}
	if err != nil {
		rec.Status, rec.Error = history.StatusFailed, err.Error()
		fail(prefixed(string(kind), err))
	}
	r.append(ctx, out, rec)
}

// lastGood is when a task of the job last succeeded (zero = never or no
// history).
func (r *Runner) lastGood(ctx context.Context, job string, kind history.Kind) time.Time {
	if r.History == nil {
		return time.Time{}
	}
	recs, _, err := r.History.Query(ctx, history.Query{Job: job, Kinds: []history.Kind{kind}})
	if err != nil {
		return time.Time{}
	}
	for _, rec := range recs {
		if rec.Status == history.StatusSuccess {
			return rec.Start
		}
	}
	return time.Time{}
}

func (r *Runner) append(ctx context.Context, out *Outcome, rec history.Record) {
	rec.ID = history.NewID() // the same id wherever the caller stores the record too
	out.Records = append(out.Records, rec)
	if r.History == nil {
		return
	}
	if err := r.History.Append(context.WithoutCancel(ctx), rec); err != nil {
		out.Warnings = append(out.Warnings, err)
	}
}

// Skipped records a start of j that did not run because its previous run
// still holds the scheduler's lock (the flock of a cron line): a skipped run,
// as Run records a start that finds the job's own lock held. The error names
// the running job's pid when its lock tells it.
func (r *Runner) Skipped(ctx context.Context, j *Job) Outcome {
	out := Outcome{Job: j.Name, Start: r.now()}
	err := fmt.Errorf("lock job %s: %w (its cron lock is held)", j.Name, ErrLocked)
	if l, lerr := TryLock(r.StateDir, j.Name); lerr == nil {
		l.Unlock()
	} else if errors.Is(lerr, ErrLocked) {
		err = lerr
	}
	r.report("job %s is already running; skipped", j.Name)
	return r.finish(ctx, j, &out, history.StatusSkipped, err, Notifier{Notify: j.Notify, Client: r.HTTPClient}, true)
}

// finish records the run and sends the final notification.
func (r *Runner) finish(ctx context.Context, j *Job, out *Outcome, status history.Status, err error, n Notifier, notify bool) Outcome {
	out.Status, out.Err, out.End = string(status), err, r.now()
	rec := history.Record{Kind: history.KindJob, Job: j.Name, Start: out.Start, End: out.End, Status: status,
		Bytes: out.Bytes, Snapshot: out.Snapshot}
	for _, br := range out.Records {
		if br.Kind == history.KindBackup {
			rec.Target, rec.Snapshots = br.Target, br.Snapshots
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	r.append(ctx, out, rec)
	if notify {
		info := RunInfo{Job: j.Name, Status: string(status), Start: out.Start, End: out.End, Snapshot: out.Snapshot, Bytes: out.Bytes}
		if err != nil {
			info.Error = err.Error()
		}
		out.Warnings = append(out.Warnings, n.Finish(ctx, info)...)
	}
	return *out
}

// FailureNoticeNeeded reports whether "bunker job notify-failure" (started
// by systemd's OnFailure=) must still notify: false when the job's newest
// run record is a failure that ended within the last 10 minutes, because
// that run notified already; true when bunker died before recording.
func FailureNoticeNeeded(recs []history.Record, job string, now time.Time) bool {
	var last *history.Record
	for i := range recs {
		r := &recs[i]
		if r.Kind == history.KindJob && r.Job == job && (last == nil || !r.Start.Before(last.Start)) {
			last = r
		}
	}
	if last == nil || last.Status != history.StatusFailed && last.Status != history.StatusPartial {
		return true
	}
	end := last.End
	if end.IsZero() {
		end = last.Start
	}
	return now.Sub(end) > 10*time.Minute
}
