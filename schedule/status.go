package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Installed is one place where a job's schedule is installed.
type Installed struct {
	Target Target
	// Path is the timer unit or the crontab inside the root; "" for the
	// invoking user's crontab read with crontab(1).
	Path string
	// Enabled is false for a timer whose timers.target.wants link is
	// missing (installed with --no-start, or disabled); cron lines are
	// always enabled.
	Enabled bool
	// Stale is set when what is installed differs from what the job file
	// renders now, or the job is no longer scheduled there: running
	// "bunker schedule install" again brings it in line.
	Stale bool
}

// Places says where [Inspect] looks for installed schedules.
type Places struct {
	// Root prefixes every path ("" or "/" = the real root).
	Root string
	// Home is the user's home directory, for user units ("" = skip them).
	Home string
	// Crontab is the user's crontab file inside Root; "" reads the
	// invoking user's crontab with "crontab -l" (none when crontab(1) is
	// not installed).
	Crontab string
}

func (p Places) abs(name string) string { return Installer{Root: p.Root}.abs(name) }

// Inspect finds where the schedules of jobs are installed: timer units in
// the system and user unit directories, lines in /etc/cron.d/bunker and in
// the user crontab's marked block. It compares each with what jobs render
// now with o, so an install made from an older job file, another binary or
// another config path shows as stale. The result maps job names to their
// installations and includes jobs that are installed but not among jobs
// (always stale). A user crontab that cannot be read is reported in the
// error, with everything else in the result.
func Inspect(ctx context.Context, p Places, jobs []JobSpec, o Options) (map[string][]Installed, error) {
	out := map[string][]Installed{}
	targets := []Target{SystemdSystem}
	if p.Home != "" {
		targets = append(targets, SystemdUser)
	}
	for _, t := range targets {
		if err := inspectUnits(p, t, jobs, o, out); err != nil {
			return out, err
		}
	}
	data, err := os.ReadFile(p.abs(path.Join(CronDir, CronFile)))
	switch {
	case err == nil:
		so := o
		so.User = false
		inspectCron(CronSystem, path.Join(CronDir, CronFile), string(data), jobs, so, out)
	case !errors.Is(err, fs.ErrNotExist):
		return out, fmt.Errorf("read %s: %w", path.Join(CronDir, CronFile), err)
	}
	tab, err := readCrontab(ctx, p)
	if tab != "" {
		uo := o
		uo.User = true
		inspectCron(CronUser, p.Crontab, tab, jobs, uo, out)
	}
	return out, err
}

func inspectUnits(p Places, t Target, jobs []JobSpec, o Options, out map[string][]Installed) error {
	dir, err := t.Dir(p.Home)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(p.abs(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	o.User = t.User()
	want := map[string][]byte{}
	if files, err := SystemdAll(jobs, o); err == nil {
		for _, f := range files {
			want[f.Name] = f.Data
		}
	}
	same := func(name string) bool {
		w, ok := want[name]
		have, err := os.ReadFile(p.abs(path.Join(dir, name)))
		return ok && err == nil && bytes.Equal(have, w)
	}
	for _, e := range entries {
		job, ok := JobFromUnit(e.Name())
		if !ok || e.Name() != TimerName(job) {
			continue
		}
		_, err := os.Lstat(p.abs(path.Join(dir, "timers.target.wants", e.Name())))
		out[job] = append(out[job], Installed{
			Target:  t,
			Path:    path.Join(dir, e.Name()),
			Enabled: err == nil,
			Stale:   !same(TimerName(job)) || !same(ServiceName(job)) || !same(NotifyUnit),
		})
	}
	return nil
}

// jobLineRE finds the job of a cron line: it ends in "job skipped JOB", or
// in "job run JOB" as lines of earlier versions did.
var jobLineRE = regexp.MustCompile(` job (?:run|skipped) ([A-Za-z0-9][A-Za-z0-9_-]*)$`)

// cronJobLines maps job names to their lines in a crontab's bunker block
// (/etc/cron.d/bunker has the markers too).
func cronJobLines(text string) map[string]string {
	lines := map[string]string{}
	in := false
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(l, "\r")
		switch l {
		case BlockBegin:
			in = true
			continue
		case BlockEnd:
			in = false
			continue
		}
		if m := jobLineRE.FindStringSubmatch(l); in && m != nil && !strings.HasPrefix(l, "#") {
			lines[m[1]] = l
		}
	}
	return lines
}

func inspectCron(t Target, where, text string, jobs []JobSpec, o Options, out map[string][]Installed) {
	want := map[string]string{}
	for _, j := range jobs {
		if tab, err := Crontab([]JobSpec{j}, o); err == nil {
			want[j.Name] = cronJobLines(tab)[j.Name]
		}
	}
	have := cronJobLines(text)
	names := make([]string, 0, len(have))
	for n := range have {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, ok := want[n]
		out[n] = append(out[n], Installed{Target: t, Path: where, Enabled: true, Stale: !ok || w != have[n]})
	}
}

func readCrontab(ctx context.Context, p Places) (string, error) {
	if p.Crontab != "" {
		data, err := os.ReadFile(p.abs(p.Crontab))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read crontab %s: %w", p.Crontab, err)
		}
		return string(data), nil
	}
	if _, err := exec.LookPath("crontab"); err != nil {
		return "", nil
	}
	return ReadUserCrontab(ctx)
}
