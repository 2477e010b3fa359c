package schedule

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// JobSpec is what the renderers need to know about a job.
type JobSpec struct {
	Name     string
	Schedule Schedule
}

// File is a rendered file: a name relative to the scheduler's directory,
// its content and its permission bits.
type File struct {
	Name string
	Data []byte
	Mode fs.FileMode
}

// Options are the inputs of the renderers.
type Options struct {
	// Binary is the absolute path of the bunker binary (default /usr/bin/bunker).
	Binary string
	// Config is the job file passed as --config ("" = the binary's default search).
	Config string
	// User renders user units (~/.config/systemd/user) or user crontab lines
	// (no user field); otherwise system units and an /etc/cron.d file.
	User bool
	// CronUser is the user field of /etc/cron.d lines (default root).
	CronUser string
	// LockDir holds the flock files of cron lines (default /run/lock).
	LockDir string
	// CronZone is the zone cron runs in (default time.Local): a line with
	// another time zone fires at the minutes of this zone's clock the job's
	// times can fall on.
	CronZone *time.Location
}

func (o Options) cronZone() *time.Location {
	if o.CronZone == nil {
		return time.Local
	}
	return o.CronZone
}

func (o Options) binary() string {
	if o.Binary == "" {
		return "/usr/bin/bunker"
	}
	return o.Binary
}

// UnitPrefix starts the names of every unit bunker generates.
const UnitPrefix = "bunker-"

// NotifyUnit is the template unit started by OnFailure= of every job unit.
const NotifyUnit = "bunker-notify@.service"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidJobName reports whether a job name can name units, lock files and
// cron lines unescaped: 1 to 64 letters, digits, '-' and '_', not starting
// with '-' or '_'.
func ValidJobName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("job name %q: use 1-64 letters, digits, '-' and '_', starting with a letter or digit", name)
	}
	if name == "notify" {
		return fmt.Errorf("job name %q is reserved", name)
	}
	return nil
}

// ServiceName and TimerName are the unit names of a job.
func ServiceName(job string) string { return UnitPrefix + job + ".service" }

// TimerName is the timer unit name of a job.
func TimerName(job string) string { return UnitPrefix + job + ".timer" }

// JobFromUnit extracts the job name from a unit name such as
// "bunker-nightly.service" (the %i of the notify template).
func JobFromUnit(unit string) (string, bool) {
	u := strings.TrimSuffix(strings.TrimSuffix(unit, ".service"), ".timer")
	if u == unit || !strings.HasPrefix(u, UnitPrefix) {
		return "", false
	}
	job := strings.TrimPrefix(u, UnitPrefix)
	if ValidJobName(job) != nil {
		return "", false
	}
	return job, true
}

// systemdQuote quotes one ExecStart= argument: specifiers are escaped and
// arguments with spaces, quotes or backslashes are double-quoted.
func systemdQuote(arg string) string {
	arg = strings.ReplaceAll(arg, "%", "%%")
	arg = strings.ReplaceAll(arg, "$", "$$")
	if arg != "" && !strings.ContainsAny(arg, " \t\"'\\;") {
		return arg
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(arg) + `"`
}

func (o Options) command(args ...string) []string {
	cmd := []string{o.binary()}
	if o.Config != "" {
		cmd = append(cmd, "--config", o.Config)
	}
	return append(cmd, args...)
}

func execLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = systemdQuote(a)
	}
	return strings.Join(q, " ")
}

func checkOptions(o Options) error {
	if !strings.HasPrefix(o.binary(), "/") {
		return fmt.Errorf("binary path %q is not absolute", o.binary())
	}
	if o.Config != "" && !strings.HasPrefix(o.Config, "/") {
		return fmt.Errorf("config path %q is not absolute", o.Config)
	}
	if strings.ContainsAny(o.binary()+o.Config, "\n\r\x00") {
		return fmt.Errorf("paths must not contain newlines or NUL")
	}
	return nil
}

// systemdHardening keeps the job away from kernel tunables, logs, control
// groups and other services while leaving block devices and all files
// readable. Disk image and block device backups need /dev, so nothing here
// may restrict devices: no PrivateDevices=, DevicePolicy= or DeviceAllow=,
// and no ProtectClock= (it implies DeviceAllow=char-rtc, which closes every
// other device). ProtectKernelModules= is left out so hooks can take LVM
// snapshots (dm-snapshot loads on demand), and RestrictSUIDSGID= so a drill
// can restore setuid files into its scratch directory. Repositories may
// live anywhere outside /usr, /boot and /etc.
const systemdHardening = `NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=full
ProtectKernelTunables=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectHostname=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
UMask=0077
`

// SystemdUnits renders the service and timer of one job:
// bunker-JOB.service and bunker-JOB.timer.
func SystemdUnits(job JobSpec, o Options) ([]File, error) {
	if err := ValidJobName(job.Name); err != nil {
		return nil, err
	}
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	if job.Schedule.cal == nil {
		return nil, fmt.Errorf("job %s has no schedule", job.Name)
	}
	var svc strings.Builder
	fmt.Fprintf(&svc, "# Generated by bunker for job %s; \"bunker schedule install\" overwrites it.\n", job.Name)
	svc.WriteString("[Unit]\n")
	fmt.Fprintf(&svc, "Description=bunker backup job %s\n", job.Name)
	if !o.User {
		svc.WriteString("Wants=network-online.target\nAfter=network-online.target\n")
	}
	svc.WriteString("OnFailure=bunker-notify@%n.service\n\n")
	svc.WriteString("[Service]\nType=oneshot\n")
	fmt.Fprintf(&svc, "ExecStart=%s\n", execLine(o.command("job", "run", job.Name)))
	svc.WriteString("Nice=19\nCPUSchedulingPolicy=batch\nIOSchedulingClass=idle\n")
	if o.User {
		svc.WriteString("NoNewPrivileges=yes\nUMask=0077\n")
	} else {
		svc.WriteString(systemdHardening)
	}

	var tmr strings.Builder
	fmt.Fprintf(&tmr, "# Generated by bunker for job %s; \"bunker schedule install\" overwrites it.\n", job.Name)
	tmr.WriteString("[Unit]\n")
	fmt.Fprintf(&tmr, "Description=bunker schedule for job %s (%s)\n\n", job.Name, specifierSafe(job.Schedule.String()))
	tmr.WriteString("[Timer]\n")
	fmt.Fprintf(&tmr, "OnCalendar=%s\n", specifierSafe(job.Schedule.OnCalendar()))
	tmr.WriteString("Persistent=true\n")
	if w := job.Schedule.Window; w > 0 {
		fmt.Fprintf(&tmr, "RandomizedDelaySec=%s\nFixedRandomDelay=true\n", strconv.FormatInt(int64(w/time.Second), 10))
	}
	fmt.Fprintf(&tmr, "Unit=%s\n\n", ServiceName(job.Name))
	tmr.WriteString("[Install]\nWantedBy=timers.target\n")

	return []File{
		{Name: ServiceName(job.Name), Data: []byte(svc.String()), Mode: 0o644},
		{Name: TimerName(job.Name), Data: []byte(tmr.String()), Mode: 0o644},
	}, nil
}

func specifierSafe(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// NotifyTemplate renders bunker-notify@.service, started by OnFailure= with
// the failed unit's name as instance; it runs
// "bunker job notify-failure UNIT".
func NotifyTemplate(o Options) (File, error) {
	if err := checkOptions(o); err != nil {
		return File{}, err
	}
	var b strings.Builder
	b.WriteString("# Generated by bunker; \"bunker schedule install\" overwrites it.\n")
	b.WriteString("[Unit]\nDescription=bunker failure notification for %i\n\n")
	b.WriteString("[Service]\nType=oneshot\n")
	fmt.Fprintf(&b, "ExecStart=%s %%i\n", execLine(o.command("job", "notify-failure")))
	if o.User {
		b.WriteString("NoNewPrivileges=yes\nUMask=0077\n")
	} else {
		b.WriteString(systemdHardening)
	}
	return File{Name: NotifyUnit, Data: []byte(b.String()), Mode: 0o644}, nil
}

// SystemdAll renders the units of every job plus the notify template,
// sorted by job name as given.
func SystemdAll(jobs []JobSpec, o Options) ([]File, error) {
	var out []File
	for _, j := range jobs {
		f, err := SystemdUnits(j, o)
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	n, err := NotifyTemplate(o)
	if err != nil {
		return nil, err
	}
	return append(out, n), nil
}

// Timers lists the timer unit names among rendered files (what to enable).
func Timers(files []File) []string {
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f.Name, ".timer") {
			out = append(out, f.Name)
		}
	}
	return out
}
