package job

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/history"
)

type fakeSteps struct {
	calls   []string
	backup  BackupResult
	backErr error
	prErr   error
}

func (f *fakeSteps) steps() Steps {
	return Steps{
		Backup: func(ctx context.Context, j *Job) (BackupResult, error) {
			f.calls = append(f.calls, "backup")
			return f.backup, f.backErr
		},
		Forget: func(ctx context.Context, j *Job) error { f.calls = append(f.calls, "forget"); return nil },
		Prune:  func(ctx context.Context, j *Job) error { f.calls = append(f.calls, "prune"); return f.prErr },
		Check:  func(ctx context.Context, j *Job) error { f.calls = append(f.calls, "check"); return nil },
		Drill: func(ctx context.Context, j *Job) (DrillResult, error) {
			f.calls = append(f.calls, "drill")
			return DrillResult{Snapshot: "snap1", Bytes: 100, Restore: 42 * time.Second}, nil
		},
	}
}

func testJob(t *testing.T, dir string) *Job {
	cfg, err := Parse([]byte(`jobs:
  nightly:
    paths: [/data]
    retention: {keep-daily: 7}
    prune: weekly
    check: always
    drill: 30d
    hooks:
      before: ['echo before >> `+dir+`/log']
      after: ['echo "after $BUNKER_STATUS" >> `+dir+`/log']
      on-success: ['echo ok >> `+dir+`/log']
      on-failure: ['echo "failure: $BUNKER_ERROR" >> `+dir+`/log']
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, _ := cfg.Job("nightly")
	return j
}

func readLog(t *testing.T, dir string) string {
	data, _ := os.ReadFile(filepath.Join(dir, "log"))
	os.Remove(filepath.Join(dir, "log"))
	return string(data)
}

func TestRunner(t *testing.T) {
	dir := t.TempDir()
	ps := &pingServer{}
	srv := httptest.NewServer(ps)
	defer srv.Close()
	j := testJob(t, dir)
	j.Notify.URL = srv.URL + "/hc"
	hist := history.Open(filepath.Join(dir, "history.jsonl"))
	now := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	fs := &fakeSteps{backup: BackupResult{Snapshot: "snap1", Bytes: 100, Snapshots: 3, Target: "/srv/repo"}}
	r := &Runner{StateDir: dir, History: hist, Steps: fs.steps(), Now: func() time.Time { return now }}
	ctx := context.Background()

	out := r.Run(ctx, j)
	if out.Status != "success" || out.Err != nil || len(out.Warnings) != 0 || out.Snapshot != "snap1" {
		t.Fatalf("outcome %+v", out)
	}
	if got := strings.Join(fs.calls, ","); got != "backup,forget,prune,check,drill" {
		t.Errorf("steps %s", got)
	}
	if got := readLog(t, dir); got != "before\nafter success\nok\n" {
		t.Errorf("hooks log %q", got)
	}
	res, _ := hist.ReadAll(ctx)
	var kinds []string
	for _, rec := range res.Records {
		kinds = append(kinds, string(rec.Kind)+":"+string(rec.Status))
	}
	if strings.Join(kinds, ",") != "backup:success,forget:success,prune:success,check:success,drill:success,job:success" {
		t.Errorf("history %v", kinds)
	}
	if res.Records[4].Duration != 42*time.Second || res.Records[5].Snapshots != 3 || res.Records[5].Snapshot != "snap1" {
		t.Errorf("records %+v", res.Records)
	}
	// The follow-up steps name the repository, a drill its snapshot and
	// the data it restored.
	for _, rec := range res.Records[1:5] {
		if rec.Target != "/srv/repo" {
			t.Errorf("%s record: target %q, want the backup's repository", rec.Kind, rec.Target)
		}
	}
	if d := res.Records[4]; d.Snapshot != "snap1" || d.Bytes != 100 {
		t.Errorf("drill record: snapshot %q, bytes %d", d.Snapshot, d.Bytes)
	}
	if strings.Join(ps.paths, ",") != "POST /hc/start,POST /hc" {
		t.Errorf("pings %v", ps.paths)
	}

	// A day later: prune (weekly) and drill (30d) are not due, check is.
	now = now.Add(24 * time.Hour)
	fs.calls = nil
	out = r.Run(ctx, j)
	if out.Status != "success" || strings.Join(fs.calls, ",") != "backup,forget,check" {
		t.Errorf("second run %s: %v", out.Status, fs.calls)
	}
	readLog(t, dir)

	// A backup that fails: no forget, on-failure hooks, /fail ping.
	fs.calls, fs.backErr, fs.backup = nil, errors.New("repository unreachable"), BackupResult{}
	out = r.Run(ctx, j)
	if out.Status != "failed" || !strings.Contains(out.Err.Error(), "backup: repository unreachable") || strings.Join(fs.calls, ",") != "backup" {
		t.Errorf("failed run %+v %v", out, fs.calls)
	}
	if got := readLog(t, dir); got != "before\nafter failed\nfailure: backup: repository unreachable\n" {
		t.Errorf("hooks log %q", got)
	}
	if ps.paths[len(ps.paths)-1] != "POST /hc/fail" {
		t.Errorf("pings %v", ps.paths)
	}

	// Partial: snapshot written, some sources unreadable.
	fs.backErr, fs.backup = errors.New("read /data/x: permission denied"), BackupResult{Snapshot: "snap2", Partial: true}
	out = r.Run(ctx, j)
	if out.Status != "partial" || out.Snapshot != "snap2" {
		t.Errorf("partial %+v", out)
	}
	readLog(t, dir)

	// Held lock: skipped, no hooks, recorded.
	lock, err := TryLock(dir, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	fs.calls = nil
	out = r.Run(ctx, j)
	lock.Unlock()
	if out.Status != "skipped" || !errors.Is(out.Err, ErrLocked) || len(fs.calls) != 0 || readLog(t, dir) != "" {
		t.Errorf("locked run %+v %v", out, fs.calls)
	}

	// Disabled: nothing runs.
	j.Enabled = false
	out = r.Run(ctx, j)
	if out.Status != "skipped" || !errors.Is(out.Err, ErrDisabled) {
		t.Errorf("disabled %+v", out)
	}
	j.Enabled = true

	// A failing before hook stops the backup; after hooks still run.
	j.Hooks.Before = []Hook{{Command: "exit 4", Timeout: time.Minute}}
	fs.calls, fs.backErr = nil, nil
	out = r.Run(ctx, j)
	if out.Status != "failed" || len(fs.calls) != 0 || !strings.Contains(out.Err.Error(), "before hook") {
		t.Errorf("before hook failure %+v %v", out, fs.calls)
	}
	if got := readLog(t, dir); !strings.HasPrefix(got, "after failed\n") {
		t.Errorf("hooks log %q", got)
	}

	res, _ = hist.ReadAll(ctx)
	recs := history.Filter(res.Records, history.Query{Kinds: []history.Kind{history.KindJob}})
	var statuses []string
	for _, rec := range recs {
		statuses = append(statuses, string(rec.Status))
	}
	if strings.Join(statuses, ",") != "failed,skipped,skipped,partial,failed,success,success" {
		t.Errorf("job records newest first: %v", statuses)
	}
	if FailureNoticeNeeded(res.Records, "nightly", now.Add(time.Minute)) {
		t.Error("failure notice needed right after a recorded failure")
	}
	if !FailureNoticeNeeded(res.Records, "nightly", now.Add(time.Hour)) || !FailureNoticeNeeded(nil, "nightly", now) {
		t.Error("failure notice not needed")
	}
}

func TestRunnerInterrupted(t *testing.T) {
	dir := t.TempDir()
	j := testJob(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{StateDir: dir, Steps: Steps{Backup: func(ctx context.Context, j *Job) (BackupResult, error) {
		cancel()
		return BackupResult{}, ctx.Err()
	}}}
	out := r.Run(ctx, j)
	if out.Status != "failed" || !errors.Is(out.Err, context.Canceled) {
		t.Errorf("outcome %+v", out)
	}
	// The after hook ran despite the cancellation.
	if got := readLog(t, dir); !strings.Contains(got, "after failed") {
		t.Errorf("hooks log %q", got)
	}
}

// TestRunnerNotifyWarnings: a failed notify command and a failed ping are
// a warning each, and do not change the run's status.
func TestRunnerNotifyWarnings(t *testing.T) {
	dir := t.TempDir()
	ps := &pingServer{status: 404}
	srv := httptest.NewServer(ps)
	defer srv.Close()
	j := testJob(t, dir)
	j.Notify.URL = srv.URL + "/hc"
	j.Notify.Command = "echo cannot mail >&2; exit 2"
	fs := &fakeSteps{backup: BackupResult{Snapshot: "snap1", Bytes: 100, Snapshots: 3, Target: "/srv/repo"}}
	r := &Runner{StateDir: dir, History: history.Open(filepath.Join(dir, "history.jsonl")), Steps: fs.steps()}
	out := r.Run(context.Background(), j)
	if out.Status != "success" {
		t.Fatalf("outcome %+v", out)
	}
	var got []string
	for _, w := range out.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		"ping " + srv.URL + "/...: HTTP status 404", // the path may hold a key
		`notify command: hook "echo cannot mail >&2; exit 2" exited with status 2: cannot mail`,
		"ping " + srv.URL + "/...: HTTP status 404",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunnerSkipped: a start skipped by the cron line's lock is recorded as
// skipped, naming the running job's pid when the job holds its own lock.
func TestRunnerSkipped(t *testing.T) {
	dir := t.TempDir()
	j := testJob(t, dir)
	hist := history.Open(filepath.Join(dir, "history.jsonl"))
	r := &Runner{StateDir: dir, History: hist}
	ctx := context.Background()
	out := r.Skipped(ctx, j)
	if out.Status != "skipped" || out.Err == nil || out.Err.Error() != "lock job nightly: job is already running (its cron lock is held)" {
		t.Errorf("outcome %+v", out)
	}
	l, err := TryLock(dir, j.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	out = r.Skipped(ctx, j)
	if !errors.Is(out.Err, ErrLocked) || !strings.Contains(out.Err.Error(), "(pid ") {
		t.Errorf("outcome %+v", out)
	}
	res, _ := hist.ReadAll(ctx)
	if len(res.Records) != 2 || res.Records[0].Status != history.StatusSkipped || res.Records[1].Status != history.StatusSkipped {
		t.Errorf("history %+v", res.Records)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Error("hooks ran for a skipped start")
	}
}
