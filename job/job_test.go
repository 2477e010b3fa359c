package job

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/nobodytest"
	"github.com/bunkerbackup/bunker/retention"
)

func TestExampleValidates(t *testing.T) {
	cfg, err := Parse([]byte(Example()), "example.yaml")
	if err != nil {
		t.Fatalf("example does not validate:\n%v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Names(), ","); got != "home,vm-disks,archive" {
		t.Errorf("jobs %s", got)
	}
	home, _ := cfg.Job("home")
	if cfg.Repository != "/srv/backup/bunker" || cfg.PasswordFile != "/etc/bunker/password" {
		t.Errorf("repository settings: %+v", cfg)
	}
	if len(home.Paths) != 2 || len(home.Excludes) != 2 || home.Schedule == nil ||
		home.Schedule.String() != "daily 02:00 window 1h" || home.Retention.Daily != 7 ||
		home.Retention.Within != (retention.Duration{Days: 2}) || len(home.Retention.Tags) != 1 ||
		len(home.Retention.Every) != 1 || home.Retention.MaxAge != (retention.Duration{Years: 2}) ||
		home.Prune.Every != 7*24*time.Hour || home.Check.Every != 30*24*time.Hour || home.MaxAge != 26*time.Hour ||
		len(home.Hooks.Before) != 1 || home.Hooks.Before[0].Timeout != 2*time.Minute ||
		home.Hooks.OnFailure[0].Timeout != DefaultHookTimeout || home.Notify.URL != "https://hc-ping.com/your-check-uuid" ||
		!home.Enabled {
		t.Errorf("home: %+v", home)
	}
	vm, _ := cfg.Job("vm-disks")
	if len(vm.Disks) != 2 || vm.Disks[1] != (Disk{Path: "/dev/vg0/db-snapshot", Name: "db", Format: "device"}) ||
		!vm.Check.Always || vm.Schedule.Zone != "Europe/Berlin" {
		t.Errorf("vm-disks: %+v", vm)
	}
	arch, _ := cfg.Job("archive")
	if arch.Enabled {
		t.Error("archive enabled")
	}
	if specs := cfg.Specs(); len(specs) != 2 || specs[1].Name != "vm-disks" {
		t.Errorf("specs: %+v", specs)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // substrings, each in the error
	}{
		{"unknown key", "jobs:\n  a:\n    paths: [/x]\n    retension: {keep-last: 1}\n",
			[]string{`c.yaml:4:5: jobs.a.retension: unknown key (did you mean "retention"?)`}},
		{"unknown top key", "repo: /x\njobs:\n  a:\n    paths: [/x]\n",
			[]string{`c.yaml:1:1: repo: unknown key`}},
		{"duplicate job", "jobs:\n  a:\n    paths: [/x]\n  a:\n    paths: [/y]\n",
			[]string{`c.yaml:4:3: jobs.a: two jobs named "a" (the first on line 2)`}},
		{"duplicate key", "jobs:\n  a:\n    paths: [/x]\n    paths: [/y]\n",
			[]string{`c.yaml:4:5: jobs.a.paths: duplicate key (first defined on line 3)`}},
		{"no sources", "jobs:\n  a:\n    tags: [x]\n",
			[]string{`c.yaml:2:3: jobs.a: job has no sources`}},
		{"bad schedule", "jobs:\n  a:\n    paths: [/x]\n    schedule: third monday\n",
			[]string{`c.yaml:4:15: jobs.a.schedule: invalid schedule "third monday"`}},
		{"bad count", "jobs:\n  a:\n    paths: [/x]\n    retention:\n      keep-daily: -3\n",
			[]string{`c.yaml:5:19: jobs.a.retention.keep-daily: expected a count`}},
		{"bad bool", "jobs:\n  a:\n    paths: [/x]\n    enabled: yes please\n",
			[]string{`jobs.a.enabled: expected true or false`}},
		{"relative path", "jobs:\n  a:\n    paths: [data]\n",
			[]string{`jobs.a.paths[0]: path "data" is not absolute`}},
		{"bad hook", "jobs:\n  a:\n    paths: [/x]\n    hooks:\n      before:\n        - command: x\n          timeout: forever\n",
			[]string{`c.yaml:7:20: jobs.a.hooks.before[0].timeout: invalid duration "forever"`}},
		{"hook without command", "jobs:\n  a:\n    paths: [/x]\n    hooks:\n      after:\n        - timeout: 1m\n",
			[]string{`jobs.a.hooks.after[0]: hook has no command`}},
		{"unquoted colon", "jobs:\n  a:\n    paths: [/x]\n    hooks:\n      after:\n        - echo failed: $X\n",
			[]string{`c.yaml:6:11: jobs.a.hooks.after[0]: "echo failed: $X" looks like a command containing ": "; quote the whole command`}},
		{"bad compression", "jobs:\n  a:\n    paths: [/x]\n    compression: fast\n",
			[]string{`c.yaml:4:18: jobs.a.compression: unknown compression "fast": use auto, max or off`}},
		{"bad url", "jobs:\n  a:\n    paths: [/x]\n    notify: {url: 'ftp://x/y'}\n",
			[]string{`jobs.a.notify.url: "ftp://x/y" is not an http:// or https:// URL`}},
		{"bad cadence", "jobs:\n  a:\n    paths: [/x]\n    prune: sometimes\n",
			[]string{`jobs.a.prune: cadence "sometimes"`}},
		{"bad format", "jobs:\n  a:\n    disks:\n      - {path: /x.img, format: iso}\n",
			[]string{`jobs.a.disks[0].format: unknown disk format "iso"`}},
		{"same disk name", "jobs:\n  a:\n    disks: [/a/x.img, /b/x.img]\n",
			[]string{`two disks named "x.img"`}},
		{"bad job name", "jobs:\n  a/b:\n    paths: [/x]\n",
			[]string{`jobs.a/b: job name "a/b"`}},
		{"both passwords", "password-file: /p\npassword-command: echo\njobs:\n  a:\n    paths: [/x]\n",
			[]string{`mutually exclusive`}},
		{"no jobs", "repository: /r\n", []string{`jobs: no jobs defined`}},
		{"empty", "", []string{`c.yaml: config file is empty`}},
		{"syntax", "jobs:\n  a: [\n", []string{`c.yaml:2:1: did not find expected node content`}},
		{"not a mapping", "- a\n- b\n", []string{`c.yaml:1:1: expected a mapping, got a list`}},
		{"bad remove-older-than", "jobs:\n  a:\n    paths: [/x]\n    retention:\n      keep-last: 1\n      remove-older-than: 4x\n",
			[]string{`c.yaml:6:26: jobs.a.retention.remove-older-than: parse duration "4x": unknown unit "x"`}},
		{"empty retention", "jobs:\n  a:\n    paths: [/x]\n    retention: {}\n", []string{`no keep rule`}},
		{"several at once", "jobs:\n  a:\n    pathz: [/x]\n  b:\n    paths: [/x]\n    schedule: daily 25:00\n",
			[]string{`3:5: jobs.a.pathz: unknown key`, `2:3: jobs.a: job has no sources`, `6:15: jobs.b.schedule`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.yaml), "c.yaml")
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestValidateBuiltConfig(t *testing.T) {
	cfg := &Config{Jobs: []*Job{{Name: "a", Paths: []string{"/x"}}, {Name: "a"}}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `two jobs named "a"`) || !strings.Contains(err.Error(), "no sources") {
		t.Errorf("Validate: %v", err)
	}
}

// The retention scheme of the disaster-recovery design guide is a job's
// retention too, not only forget flags: everything of the last 24 hours,
// one per 4 hours up to 48 hours, then only bookmarks, nothing older than
// 4 weeks.
func TestRetentionDisasterRecovery(t *testing.T) {
	cfg, err := Parse([]byte(`jobs:
  replica:
    paths: [/srv]
    retention:
      keep-within: 24h
      keep-within-every: 48h:4h
      keep-tag: bookmark
      remove-older-than: 4w
`), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, _ := cfg.Job("replica")
	want := retention.Policy{
		Within: retention.MustParseDuration("24h"),
		Every:  []retention.Every{{Within: retention.MustParseDuration("48h"), Width: retention.MustParseDuration("4h")}},
		Tags:   []retention.TagList{{"bookmark"}},
		MaxAge: retention.MustParseDuration("4w"),
	}
	if got := j.Retention.String(); got != want.String() {
		t.Errorf("retention %q, want %q", got, want.String())
	}
	if j.Retention.MaxAge != want.MaxAge {
		t.Errorf("remove-older-than %v, want %v", j.Retention.MaxAge, want.MaxAge)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(Example()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil || cfg.File != p {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

// TestLoadUnreadable: a configuration file this user cannot read. Root
// reads any file, so as root the test runs as the user nobody.
func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		nobodytest.Rerun(t)
		return
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(Example()), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "must be able to read it") {
		t.Errorf("unreadable: %v", err)
	}
}

func TestCadence(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	weekly, _ := ParseCadence("weekly")
	if !weekly.Due(time.Time{}, now) || weekly.Due(now.Add(-6*24*time.Hour), now) || !weekly.Due(now.Add(-7*24*time.Hour), now) {
		t.Error("weekly Due")
	}
	for in, want := range map[string]string{"always": "always", "never": "never", "36h": "36h0m0s", "2w": "2w", "3d": "3d", "monthly": "30d"} {
		c, err := ParseCadence(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseCadence(%q) = %v, %v", in, c, err)
		}
	}
	if (Cadence{}).Due(time.Time{}, now) {
		t.Error("never is due")
	}
}

func TestRunHooks(t *testing.T) {
	ctx := context.Background()
	hooks := []Hook{
		{Command: `echo "out $BUNKER_JOB"; echo err >&2`, Timeout: 10 * time.Second},
		{Command: "exit 3", Timeout: 10 * time.Second},
		{Command: "echo never", Timeout: 10 * time.Second},
	}
	res, err := RunHooks(ctx, hooks, []string{"BUNKER_JOB=nightly"}, false)
	if len(res) != 2 || res[0].Output != "out nightly\nerr\n" || res[0].Err != nil || res[0].ExitCode != 0 {
		t.Fatalf("results %+v", res)
	}
	var he *HookError
	if !errors.As(err, &he) || he.ExitCode != 3 || res[1].ExitCode != 3 || err.Error() != `hook "exit 3" exited with status 3` {
		t.Errorf("error %v", err)
	}
	res, err = RunHooks(ctx, hooks, nil, true)
	if len(res) != 3 || res[2].Output != "never\n" || err == nil {
		t.Errorf("keepGoing: %+v %v", res, err)
	}
}

// TestHookTimeoutKillsGroup checks that a hung hook and the process it
// started are both killed at the timeout.
func TestHookTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	cmd := `sleep 300 & echo $! > ` + pidFile + `; echo started; wait`
	start := time.Now()
	res, err := RunHooks(context.Background(), []Hook{{Command: cmd, Timeout: 300 * time.Millisecond}}, nil, false)
	elapsed := time.Since(start)
	var he *HookError
	if !errors.As(err, &he) || !he.TimedOut || !res[0].TimedOut {
		t.Fatalf("err %v res %+v", err, res)
	}
	if !strings.Contains(err.Error(), "timed out after 300ms") || res[0].Output != "started\n" {
		t.Errorf("err %q output %q", err, res[0].Output)
	}
	if elapsed > 5*time.Second {
		t.Errorf("took %v", elapsed)
	}
	data, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(data))
	if pid == "" {
		t.Fatal("no grandchild pid")
	}
	// The grandchild must be gone (or a zombie awaiting its reaper).
	deadline := time.Now().Add(3 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %s still running: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHookLeavesDaemon: a hook that starts a background process keeping
// the output open succeeds after the grace period instead of hanging.
func TestHookLeavesDaemon(t *testing.T) {
	start := time.Now()
	res, err := RunHooks(context.Background(), []Hook{{Command: "sleep 4 & echo started", Timeout: time.Minute}}, nil, false)
	if err != nil || res[0].ExitCode != 0 || !strings.HasPrefix(res[0].Output, "started\n") {
		t.Errorf("err %v res %+v", err, res)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestHookOutputCapped(t *testing.T) {
	res, err := RunHooks(context.Background(), []Hook{{Command: "head -c 300000 /dev/zero | tr '\\0' x; echo END", Timeout: 10 * time.Second}}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	out := res[0].Output
	if !strings.HasPrefix(out, "[...]\n") || !strings.HasSuffix(out, "xEND\n") || len(out) > maxHookOutput+10 {
		t.Errorf("output %d bytes, starts %q", len(out), out[:10])
	}
}

func TestHookContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, err := RunHooks(ctx, []Hook{{Command: "sleep 30", Timeout: time.Minute}, {Command: "true", Timeout: time.Minute}}, nil, true)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
}

func TestTryLock(t *testing.T) {
	dir := t.TempDir()
	l, err := TryLock(dir, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	_, err = TryLock(dir, "nightly")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second lock: %v", err)
	}
	other, err := TryLock(dir, "weekly")
	if err != nil {
		t.Fatal(err)
	}
	other.Unlock()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(dir, "nightly")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	l2.Unlock()
	if err := l2.Unlock(); err != nil {
		t.Error("double unlock")
	}
}

// TestTryLockFlockTool checks the lock against flock(1), which cron lines use.
func TestTryLockFlockTool(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("flock(1) missing")
		}
		t.Skip("flock(1) missing")
	}
	dir := t.TempDir()
	l, err := TryLock(dir, "j")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	res, err := RunHooks(context.Background(), []Hook{{Command: "flock -n " + LockPath(dir, "j") + " true", Timeout: 5 * time.Second}}, nil, false)
	if err == nil || res[0].ExitCode != 1 {
		t.Errorf("flock(1) got the lock we hold: %v", err)
	}
}

type pingServer struct {
	mu     sync.Mutex
	paths  []string
	bodies []string
	fail   int // respond 500 this many times
	status int
}

func (p *pingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths = append(p.paths, r.Method+" "+r.URL.Path)
	p.bodies = append(p.bodies, string(body))
	if p.fail > 0 {
		p.fail--
		w.WriteHeader(500)
		return
	}
	if p.status != 0 {
		w.WriteHeader(p.status)
		return
	}
	io.WriteString(w, "OK")
}

func TestNotify(t *testing.T) {
	ps := &pingServer{}
	srv := httptest.NewServer(ps)
	defer srv.Close()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	n := Notifier{
		Notify:     Notify{URL: srv.URL + "/ping/uuid", Command: "env | grep ^BUNKER_ | sort > " + envFile, Timeout: 5 * time.Second},
		RetryDelay: 10 * time.Millisecond,
	}
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	info := RunInfo{Job: "nightly", Status: StatusSuccess, Start: start, End: start.Add(90 * time.Second), Snapshot: "abcd", Bytes: 42}
	if errs := n.Finish(ctx, info); errs != nil {
		t.Fatal(errs)
	}
	env, _ := os.ReadFile(envFile)
	wantEnv := "BUNKER_BYTES=42\nBUNKER_DURATION=90\nBUNKER_END=2026-11-22T02:01:30Z\nBUNKER_ERROR=\nBUNKER_JOB=nightly\nBUNKER_SNAPSHOT=abcd\nBUNKER_START=2026-11-22T02:00:00Z\nBUNKER_STATUS=success\n"
	if string(env) != wantEnv {
		t.Errorf("env:\n%s\nwant:\n%s", env, wantEnv)
	}
	ps.fail = 2 // retried until it works
	info.Status, info.Error = StatusFailed, "disk unreadable"
	if errs := n.Finish(ctx, info); errs != nil {
		t.Fatal(errs)
	}
	want := []string{"POST /ping/uuid/start", "POST /ping/uuid", "POST /ping/uuid/fail", "POST /ping/uuid/fail", "POST /ping/uuid/fail"}
	if strings.Join(ps.paths, "|") != strings.Join(want, "|") {
		t.Errorf("pings %v", ps.paths)
	}
	if ps.bodies[4] != "bunker job nightly: failed\ndisk unreadable" {
		t.Errorf("body %q", ps.bodies[4])
	}
	// Skipped runs do not ping; a 404 is not retried and the error hides the key.
	info.Status = StatusSkipped
	n.Notify.Command = ""
	if errs := n.Finish(ctx, info); errs != nil || len(ps.paths) != 5 {
		t.Errorf("skipped: %v %v", errs, ps.paths)
	}
	ps.status = 404
	info.Status = StatusSuccess
	errs := n.Finish(ctx, info)
	if len(errs) != 1 || strings.Contains(errs[0].Error(), "uuid") || !strings.Contains(errs[0].Error(), "HTTP status 404") || len(ps.paths) != 6 {
		t.Errorf("404: %v %v", errs, ps.paths)
	}
}

func TestNotifyCommandFails(t *testing.T) {
	n := Notifier{Notify: Notify{Command: "echo cannot mail >&2; exit 2", Timeout: 5 * time.Second}}
	errs := n.Finish(context.Background(), RunInfo{Job: "a", Status: StatusSuccess})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "exited with status 2: cannot mail") {
		t.Errorf("errs %v", errs)
	}
	n = Notifier{Notify: Notify{URL: "http://127.0.0.1:1/x", Timeout: time.Second}, Retries: -1}
	if errs := n.Finish(context.Background(), RunInfo{Job: "a", Status: StatusSuccess}); len(errs) != 1 {
		t.Errorf("unreachable ping: %v", errs)
	}
	// Both fail: one error each, on one line each, the command's first.
	n.Notify.Command = "echo first line; echo second line >&2; exit 3"
	errs = n.Finish(context.Background(), RunInfo{Job: "a", Status: StatusFailed})
	if len(errs) != 2 || !strings.HasPrefix(errs[0].Error(), "notify command: ") || !strings.HasPrefix(errs[1].Error(), "ping ") {
		t.Fatalf("errs %q", errs)
	}
	if got := errs[0].Error(); strings.Contains(got, "\n") || !strings.HasSuffix(got, ": first line; second line") {
		t.Errorf("notify command error %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	f.Add([]byte("jobs:\n  a:\n    paths: [/x]\n    schedule: daily 02:00\n"))
	f.Add([]byte("jobs:\n  a: &x\n    paths: [/x]\n  b: *x\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("jobs:\n  a:\n    disks:\n      - {path: /x, name: y}\n    hooks: {before: [x, {command: y, timeout: 1s}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed config fails Validate: %v", err)
		}
	})
}
