package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/history"
	"github.com/bunkerbackup/bunker/schedule"
)

type scheduleOptions struct {
	systemd, cron, user bool
	root                string
	binary              string
	noStart             bool
}

func (o *scheduleOptions) addFlags(cmd *cobra.Command, install bool) {
	f := cmd.Flags()
	if cmd.Name() == "status" {
		// Status looks at every scheduler.
		f.StringVar(&o.root, "root", "/", "look for installed units and cron lines under `dir` instead of /")
		f.StringVar(&o.binary, "binary", "", "the bunker `path` the units should run (default: this executable)")
		return
	}
	f.BoolVar(&o.systemd, "systemd", false, "systemd timers (the default when systemd runs)")
	f.BoolVar(&o.cron, "cron", false, "cron lines (the default without systemd)")
	f.BoolVar(&o.user, "user", false, "per-user timers (~/.config/systemd/user) or the user's crontab, instead of system-wide")
	if install {
		f.StringVar(&o.root, "root", "/", "write under `dir` instead of / (for tests and packaging; systemd is not told)")
	}
	if cmd.Name() != "remove" {
		f.StringVar(&o.binary, "binary", "", "the bunker `path` the units run (default: this executable)")
	}
	if cmd.Name() == "install" {
		f.BoolVar(&o.noStart, "no-start", false, "write the files but do not enable or start the timers")
	}
}

func (o *scheduleOptions) target() (schedule.Target, error) {
	if o.systemd && o.cron {
		return 0, usageErrorf("--systemd and --cron are mutually exclusive")
	}
	useCron := o.cron || (!o.systemd && !schedule.SystemdRunning(o.rootDir()))
	switch {
	case useCron && o.user:
		return schedule.CronUser, nil
	case useCron:
		return schedule.CronSystem, nil
	case o.user:
		return schedule.SystemdUser, nil
	}
	return schedule.SystemdSystem, nil
}

func (o *scheduleOptions) rootDir() string {
	if o.root == "" {
		return "/"
	}
	return o.root
}

// renderOptions are the schedule renderer's inputs: the binary and the
// absolute config path the units and cron lines pass on.
func (g *globalOptions) renderOptions(o *scheduleOptions) (schedule.Options, error) {
	bin := o.binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return schedule.Options{}, fmt.Errorf("find the bunker binary: %w (name it with --binary)", err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			bin = exe
		}
	}
	cfg, err := filepath.Abs(g.jobConfigPath())
	if err != nil {
		return schedule.Options{}, err
	}
	root := o.root
	if root == "" {
		root = "/"
	}
	return schedule.Options{Binary: bin, Config: cfg, CronZone: schedule.SystemZone(root)}, nil
}

func newScheduleCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Generate, install and remove systemd timers or cron lines for the jobs",
		Long: `bunker never runs as a daemon: systemd timers or cron start 'bunker job run
JOB' at the times of each job's schedule.` + exitStatusHelp(),
		Example: `  bunker schedule generate --systemd
  sudo bunker schedule install
  bunker schedule install --user --cron
  bunker schedule status`,
		Args: noArgs,
	}
	cmd.AddCommand(newScheduleGenerateCmd(g), newScheduleInstallCmd(g), newScheduleRemoveCmd(g), newScheduleStatusCmd(g))
	return cmd
}

func newScheduleGenerateCmd(g *globalOptions) *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Print the units or crontab lines of the scheduled jobs",
		Long: `Print what 'schedule install' would write: for systemd a oneshot service and
a timer per enabled, scheduled job plus bunker-notify@.service; for cron the
/etc/cron.d/bunker file (or with --user the block for the user's crontab).

Cron lines guard against overlapping runs with util-linux flock (its -E
option records an overlapping start as skipped; BusyBox flock lacks it), and
lines of schedules with a time zone read the zone's clock with GNU date
(date -d @SECONDS) in the system's zone (/etc/localtime), whatever TZ the
installing shell has.` + exitStatusHelp(),
		Example: "  bunker schedule generate --systemd\n  bunker schedule generate --cron --user",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, p, err := g.renderSchedule(&o)
			if err != nil {
				return err
			}
			if p.Target == schedule.CronUser {
				_, err = io.WriteString(g.stdout, p.Block)
				return err
			}
			for i, f := range p.Files {
				if i > 0 {
					fmt.Fprintln(g.stdout)
				}
				fmt.Fprintf(g.stdout, "# %s\n%s", filepath.Join(p.Dir, f.Name), f.Data)
			}
			return nil
		},
	}
	o.addFlags(cmd, false)
	return cmd
}

func (o *scheduleOptions) installer(t schedule.Target) (schedule.Installer, string) {
	in := schedule.Installer{Root: o.rootDir(), Manifest: schedule.SystemManifest}
	crontab := ""
	if t.User() {
		in.Manifest = schedule.UserManifest(stateDir())
		if t == schedule.CronUser && o.rootDir() != "/" {
			name := "root"
			if u, err := user.Current(); err == nil {
				name = u.Username
			}
			crontab = "/var/spool/cron/crontabs/" + name
		}
	}
	return in, crontab
}

func newScheduleInstallCmd(g *globalOptions) *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the timers or cron lines of the scheduled jobs",
		Long: `Write the units (/etc/systemd/system, or ~/.config/systemd/user with --user),
/etc/cron.d/bunker, or a marked block in the user's crontab (--cron --user);
then reload systemd and enable the timers when systemd runs. Files of jobs
that are no longer scheduled are removed. What was written is recorded, so
'schedule remove' takes out exactly that.` + exitStatusHelp(),
		Example: "  sudo bunker schedule install\n  bunker schedule install --user\n  bunker schedule install --root ./pkgroot --systemd",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, p, err := g.renderSchedule(&o)
			if err != nil {
				return err
			}
			in, crontab := o.installer(t)
			if o.rootDir() == "/" {
				for _, z := range p.MissingZones("/") {
					g.out.warn("schedule install", "", fmt.Errorf("time zone %s is not in %s: install tzdata, or date(1) reads UTC in the cron lines of its jobs", z, schedule.ZoneInfoDir))
				}
			}
			done, err := in.Apply(cmd.Context(), p, crontab, !o.noStart && o.rootDir() == "/")
			for _, d := range done {
				g.out.printf("%s\n", d)
			}
			if err != nil && os.IsPermission(err) && !t.User() {
				return withHint(err, "run as root, or install per user with --user")
			}
			return err
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

func newScheduleRemoveCmd(g *globalOptions) *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Remove exactly what 'schedule install' wrote",
		Long: `Stop and remove the timers, units, cron file or crontab block that 'schedule
install' recorded; with --systemd or --cron only that scheduler's.` + exitStatusHelp(),
		Example: "  sudo bunker schedule remove\n  bunker schedule remove --user",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := o.target()
			if err != nil {
				return err
			}
			in, crontab := o.installer(t)
			activate := o.rootDir() == "/"
			var done []string
			if o.systemd || o.cron {
				// Only the named scheduler's files.
				home, _ := os.UserHomeDir()
				dir, err := t.Dir(home)
				if err != nil {
					return err
				}
				done, err = in.Unapply(cmd.Context(), t, dir, crontab, activate)
			} else {
				// Everything recorded, for either scheduler.
				m, merr := in.ReadManifest()
				if merr != nil {
					return merr
				}
				if m.CrontabBlock {
					done, err = in.Unapply(cmd.Context(), schedule.CronUser, "", crontab, activate)
				}
				if err == nil {
					// The recorded files: units, or /etc/cron.d/bunker. A
					// user's files are systemd user units (the crontab
					// block is done above).
					ft := t
					if ft == schedule.CronUser {
						ft = schedule.SystemdUser
					}
					var more []string
					more, err = in.Unapply(cmd.Context(), ft, "", "", activate)
					done = append(done, more...)
				}
			}
			for _, d := range done {
				g.out.printf("%s\n", d)
			}
			if err == nil && len(done) == 0 {
				g.out.printf("nothing installed\n")
			}
			return err
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

type scheduleStatusJSON struct {
	Job       string                `json:"job"`
	Enabled   bool                  `json:"enabled"`
	Schedule  string                `json:"schedule,omitempty"`
	Next      string                `json:"next_run,omitempty"`
	LastRun   *history.Record       `json:"last_run,omitempty"`
	Installed []scheduleInstallJSON `json:"installed"`
}

type scheduleInstallJSON struct {
	Scheduler string `json:"scheduler"`
	Path      string `json:"path,omitempty"`
	Enabled   bool   `json:"enabled"`
	Stale     bool   `json:"stale"`
}

func newScheduleStatusCmd(g *globalOptions) *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each job's schedule, installation, last run, result and next run",
		Long: `Show each job's schedule, its last run and result from the local history, its
next run, and where its schedule is installed: systemd timers (system or
--user units), /etc/cron.d/bunker, or the user's crontab. An installation
that differs from what the job file renders now (another schedule, binary
or config path, or a job no longer scheduled) is marked stale: run
'bunker schedule install' again. Jobs installed but missing from the job
file are listed too.` + exitStatusHelp(),
		Example: "  bunker schedule status\n  bunker schedule status --json\n  bunker schedule status --root ./pkgroot --binary /usr/bin/bunker",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadJobs()
			if err != nil {
				return err
			}
			ro, err := g.renderOptions(&o)
			if err != nil {
				return err
			}
			home, _ := os.UserHomeDir()
			_, crontab := o.installer(schedule.CronUser)
			installs, ierr := schedule.Inspect(cmd.Context(), schedule.Places{Root: o.rootDir(), Home: home, Crontab: crontab}, cfg.Specs(), ro)
			if ierr != nil {
				g.out.warn("schedule status", "", ierr)
			}
			res, err := historyLog().ReadAll(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			var expect []history.Expect
			var schedules []string
			known := map[string]bool{}
			for _, j := range cfg.Jobs {
				known[j.Name] = true
				e := history.Expect{Job: j.Name, Enabled: j.Enabled}
				sched := "-"
				if j.Schedule != nil {
					sched = j.Schedule.String()
					if j.Enabled {
						e.Next = j.Schedule.Next(now)
					}
				}
				if !j.Enabled {
					sched = "disabled"
				}
				expect = append(expect, e)
				schedules = append(schedules, sched)
			}
			// Jobs installed but gone from the job file.
			var orphans []string
			for name := range installs {
				if !known[name] {
					orphans = append(orphans, name)
				}
			}
			sort.Strings(orphans)
			for _, name := range orphans {
				expect = append(expect, history.Expect{Job: name})
				schedules = append(schedules, "not in the job file")
			}
			sts := history.Evaluate(res.Records, expect, now)
			docs := make([]scheduleStatusJSON, 0, len(sts))
			rows := make([][]string, 0, len(sts))
			var stale []string
			for i, s := range sts {
				d := scheduleStatusJSON{Job: s.Job, Enabled: s.Enabled}
				row := []string{s.Job, schedules[i], "-", "never", "-", "-"}
				if i < len(cfg.Jobs) && cfg.Jobs[i].Schedule != nil {
					d.Schedule = cfg.Jobs[i].Schedule.String()
				}
				var isStale bool
				row[2], d.Installed, isStale = describeInstalls(installs[s.Job])
				if isStale {
					stale = append(stale, s.Job)
				}
				if s.HasRun {
					r := s.LastRun
					d.LastRun = &r
					row[3], row[4] = r.Start.Local().Format("2006-01-02 15:04"), string(r.Status)
				}
				if !s.Next.IsZero() {
					d.Next, row[5] = s.Next.Format(time.RFC3339), s.Next.Local().Format("2006-01-02 15:04")
				}
				docs = append(docs, d)
				rows = append(rows, row)
			}
			err = g.out.document(docs, func(w io.Writer) error {
				return table(w, []string{"JOB", "SCHEDULE", "INSTALLED", "LAST RUN", "RESULT", "NEXT RUN"}, rows)
			})
			if err == nil && len(stale) > 0 {
				g.out.warn("schedule status", "", fmt.Errorf("installed schedule of %s differs from the job file: run 'bunker schedule install' again", strings.Join(stale, ", ")))
			}
			return err
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

// describeInstalls renders where a job is installed: the table cell
// ("systemd (not enabled), cron (stale)" or "-"), the JSON entries, and
// whether any installation is stale.
func describeInstalls(ins []schedule.Installed) (string, []scheduleInstallJSON, bool) {
	docs := []scheduleInstallJSON{}
	var cells []string
	stale := false
	for _, in := range ins {
		docs = append(docs, scheduleInstallJSON{Scheduler: in.Target.String(), Path: in.Path, Enabled: in.Enabled, Stale: in.Stale})
		var notes []string
		if in.Stale {
			notes = append(notes, "stale")
			stale = true
		}
		if !in.Enabled {
			notes = append(notes, "not enabled")
		}
		cell := in.Target.String()
		if len(notes) > 0 {
			cell += " (" + strings.Join(notes, ", ") + ")"
		}
		cells = append(cells, cell)
	}
	if len(cells) == 0 {
		return "-", docs, false
	}
	return strings.Join(cells, ", "), docs, stale
}

// renderSchedule renders the units or crontab lines of the configured jobs
// for the target the flags select.
func (g *globalOptions) renderSchedule(o *scheduleOptions) (schedule.Target, schedule.Plan, error) {
	t, err := o.target()
	if err != nil {
		return 0, schedule.Plan{}, err
	}
	cfg, err := g.loadJobs()
	if err != nil {
		return 0, schedule.Plan{}, err
	}
	ro, err := g.renderOptions(o)
	if err != nil {
		return 0, schedule.Plan{}, err
	}
	home, _ := os.UserHomeDir()
	p, err := schedule.Render(t, cfg.Specs(), ro, home)
	return t, p, err
}
