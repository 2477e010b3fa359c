package schedule

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Target is the scheduler an install writes for.
type Target int

// The install targets.
const (
	SystemdSystem Target = iota + 1 // /etc/systemd/system
	SystemdUser                     // ~/.config/systemd/user
	CronSystem                      // /etc/cron.d/bunker
	CronUser                        // the user's crontab, in a marked block
)

func (t Target) String() string {
	switch t {
	case SystemdSystem:
		return "systemd"
	case SystemdUser:
		return "systemd --user"
	case CronSystem:
		return "cron"
	case CronUser:
		return "crontab"
	}
	return fmt.Sprintf("Target(%d)", int(t))
}

// Systemd reports whether the target is a systemd one.
func (t Target) Systemd() bool { return t == SystemdSystem || t == SystemdUser }

// User reports whether the target is per user.
func (t Target) User() bool { return t == SystemdUser || t == CronUser }

// Plan is what an install of a target writes.
type Plan struct {
	Target Target
	// Dir is the directory (inside the root) the files go to; empty for CronUser.
	Dir   string
	Files []File
	// Block is the marked crontab block of a CronUser plan.
	Block string
	// Timers are the timer units to enable (systemd targets).
	Timers []string
	// Zones are the time zones the cron lines read with date(1).
	Zones []string
}

// ZoneInfoDir is where date(1) finds time zones.
const ZoneInfoDir = "/usr/share/zoneinfo"

// MissingZones lists the plan's time zones that root's zoneinfo database
// lacks. date(1) falls back to UTC without a word for them, so the cron
// lines of their jobs would run at UTC times.
func (p Plan) MissingZones(root string) []string {
	var out []string
	for _, z := range p.Zones {
		if z == "UTC" {
			continue
		}
		if _, err := os.Stat(Installer{Root: root}.abs(path.Join(ZoneInfoDir, z))); err != nil {
			out = append(out, z)
		}
	}
	return out
}

// Dir is the directory a target's files go to (inside the root); "" for
// CronUser, whose lines live in the crontab.
func (t Target) Dir(home string) (string, error) {
	switch t {
	case SystemdSystem:
		return SystemUnitDir, nil
	case SystemdUser:
		if !path.IsAbs(home) {
			return "", fmt.Errorf("home directory %q is not absolute", home)
		}
		return UserUnitDir(home), nil
	case CronSystem:
		return CronDir, nil
	case CronUser:
		return "", nil
	}
	return "", fmt.Errorf("unknown schedule target %d", int(t))
}

// Render renders the jobs for a target. home is the user's home directory
// (for SystemdUser). o.User is set from the target.
func Render(t Target, jobs []JobSpec, o Options, home string) (Plan, error) {
	o.User = t.User()
	p := Plan{Target: t}
	var err error
	if p.Dir, err = t.Dir(home); err != nil {
		return p, err
	}
	switch t {
	case SystemdSystem, SystemdUser:
		if p.Files, err = SystemdAll(jobs, o); err != nil {
			return p, err
		}
		p.Timers = Timers(p.Files)
		return p, nil
	case CronSystem:
		text, err := Crontab(jobs, o)
		if err != nil {
			return p, err
		}
		p.Files = []File{{Name: CronFile, Data: []byte(text), Mode: 0o644}}
	case CronUser:
		if p.Block, err = Crontab(jobs, o); err != nil {
			return p, err
		}
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		if z := j.Schedule.Zone; z != "" && !seen[z] {
			seen[z] = true
			p.Zones = append(p.Zones, z)
		}
	}
	return p, nil
}

// Apply installs a plan under the installer's root and reports what it did
// as lines for the operator. For CronUser the block goes into crontabFile
// (a path inside the root) when given, else into the invoking user's
// crontab through crontab(1). With activate, systemd is told (daemon-reload,
// enable --now of the timers, disable --now of timers no longer generated)
// when it runs under the root.
func (in Installer) Apply(ctx context.Context, p Plan, crontabFile string, activate bool) ([]string, error) {
	var done []string
	if p.Target == CronUser {
		if err := in.mergeCrontab(ctx, p.Block, crontabFile); err != nil {
			return done, err
		}
		where := "the user's crontab"
		if crontabFile != "" {
			where = crontabFile
		}
		done = append(done, "merged the bunker block into "+where)
		return done, in.SetCrontabBlock(true)
	}
	systemd := activate && p.Target.Systemd() && SystemdRunning(in.Root)
	user := p.Target == SystemdUser
	if systemd {
		// Stop timers of jobs that are gone before their files go.
		m, err := in.ReadManifest()
		if err != nil {
			return done, err
		}
		keep := map[string]bool{}
		for _, t := range p.Timers {
			keep[t] = true
		}
		for _, e := range m.Files {
			name := path.Base(e.Path)
			if path.Dir(e.Path) == p.Dir && strings.HasSuffix(name, ".timer") && !keep[name] {
				if err := Systemctl(ctx, user, "disable", "--now", name); err == nil {
					done = append(done, "stopped "+name)
				}
			}
		}
	}
	res, err := in.Install(p.Dir, p.Files)
	for _, w := range res.Written {
		done = append(done, "wrote "+w)
	}
	for _, r := range res.Removed {
		done = append(done, "removed "+r)
	}
	if err != nil {
		return done, err
	}
	if systemd {
		if err := Systemctl(ctx, user, "daemon-reload"); err != nil {
			return done, err
		}
		done = append(done, "reloaded systemd")
		if len(p.Timers) > 0 {
			if err := Systemctl(ctx, user, append([]string{"enable", "--now"}, p.Timers...)...); err != nil {
				return done, err
			}
			done = append(done, "enabled "+strings.Join(p.Timers, " "))
		}
	} else if p.Target.Systemd() && activate {
		done = append(done, "systemd is not running here: run systemctl daemon-reload and enable the timers when it is")
	}
	return done, nil
}

// Unapply removes what the manifest lists in the target's directory dir
// ("" = everything the manifest lists), stopping timers first when systemd
// runs and activate is set; for CronUser it removes the marked block.
func (in Installer) Unapply(ctx context.Context, t Target, dir, crontabFile string, activate bool) ([]string, error) {
	var done []string
	if t == CronUser {
		found, err := in.removeCrontab(ctx, crontabFile)
		if err != nil {
			return done, err
		}
		if found {
			done = append(done, "removed the bunker block from the crontab")
		}
		return done, in.SetCrontabBlock(false)
	}
	systemd := activate && t.Systemd() && SystemdRunning(in.Root)
	m, err := in.ReadManifest()
	if err != nil {
		return done, err
	}
	if systemd {
		var timers []string
		for _, e := range m.Files {
			if strings.HasSuffix(e.Path, ".timer") && (dir == "" || path.Dir(e.Path) == dir) {
				timers = append(timers, path.Base(e.Path))
			}
		}
		if len(timers) > 0 {
			if err := Systemctl(ctx, t == SystemdUser, append([]string{"disable", "--now"}, timers...)...); err == nil {
				done = append(done, "stopped "+strings.Join(timers, " "))
			}
		}
	}
	res, err := in.Remove(dir)
	for _, r := range res.Removed {
		done = append(done, "removed "+r)
	}
	if err != nil {
		return done, err
	}
	if systemd {
		if err := Systemctl(ctx, t == SystemdUser, "daemon-reload"); err != nil {
			return done, err
		}
		done = append(done, "reloaded systemd")
	}
	return done, nil
}

func (in Installer) mergeCrontab(ctx context.Context, block, file string) error {
	if file == "" {
		cur, err := ReadUserCrontab(ctx)
		if err != nil {
			return err
		}
		merged, err := MergeBlock(cur, block)
		if err != nil {
			return err
		}
		return WriteUserCrontab(ctx, merged)
	}
	p := in.abs(file)
	cur, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read crontab: %w", err)
	}
	merged, err := MergeBlock(string(cur), block)
	if err != nil {
		return fmt.Errorf("crontab %s: %w", file, err)
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(p); err == nil {
		mode = fi.Mode().Perm()
	}
	return WriteFileAtomic(filepath.Clean(p), []byte(merged), mode)
}

func (in Installer) removeCrontab(ctx context.Context, file string) (bool, error) {
	if file == "" {
		cur, err := ReadUserCrontab(ctx)
		if err != nil {
			return false, err
		}
		out, found, err := RemoveBlock(cur)
		if err != nil || !found {
			return false, err
		}
		return true, WriteUserCrontab(ctx, out)
	}
	p := in.abs(file)
	cur, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read crontab: %w", err)
	}
	out, found, err := RemoveBlock(string(cur))
	if err != nil || !found {
		return false, err
	}
	fi, _ := os.Stat(p)
	return true, WriteFileAtomic(p, []byte(out), fi.Mode().Perm())
}
