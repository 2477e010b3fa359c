package schedule

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// zoned are the schedules with a time zone the simulations run: every form
// of the grammar, at wall times the zones skip or repeat when their clocks
// change.
var zoned = []string{
	"daily 02:30 tz Europe/Berlin",
	"daily 01:30 tz America/New_York",
	"daily 04:00 tz Europe/Berlin",
	"hourly tz Australia/Lord_Howe",
	"weekly sun 02:00 tz Europe/Berlin",
	"weekly mon..fri 01:30 tz America/New_York",
	"monthly 31 02:30 tz Europe/Berlin",
	"monthly 8 02:15 tz America/New_York",
	"monthly second-sun 02:30 tz America/New_York",
	"monthly last-sun 02:30 tz Europe/Berlin",
	"monthly last-sun 00:30 tz Europe/Berlin",
	"monthly first-sun 23:30 tz Australia/Lord_Howe",
	"every 15m tz Europe/Berlin",
	"every 6h tz America/New_York",
	"every 2h tz Europe/Berlin window 10m",
	"every 30m tz Asia/Kolkata",
	"once 2026-10-25 02:30 tz Europe/Berlin",
	"once 2026-11-01 01:30 tz America/New_York",
	"OnCalendar=Mon..Fri *-*-* 00..03:00,30 Europe/Berlin",
	"OnCalendar=*-03,10-25..31 01..03:15 Europe/Berlin",
}

// systemZones are the zones cron runs in during the simulations.
var systemZones = []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"}

// TestCronZoneSimulation runs cron minute by minute through 2026 (both
// clock changes of Berlin, New York and Lord Howe) in several system
// zones, evaluates each zoned line's guard whenever the line fires, and
// checks that the job starts at exactly the instants Next computes, which
// TestSystemdAnalyzeCalendar checks against systemd.
func TestCronZoneSimulation(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, line := range zoned {
		t.Run(line, func(t *testing.T) {
			t.Parallel()
			s := MustParse(line)
			var want []time.Time
			for n := s.Next(start.Add(-time.Second)); !n.IsZero() && n.Before(end); n = s.Next(n) {
				want = append(want, n)
			}
			for _, zone := range systemZones {
				sys, err := time.LoadLocation(zone)
				if err != nil {
					t.Fatal(err)
				}
				cl := zonedLine(t, s, sys)
				got := cl.simulate(t, sys, start, end)
				if d := diffTimes(got, want); d != "" {
					t.Errorf("cron in %s:\n%s\nline: %s", zone, d, cl.text)
				}
			}
		})
	}
}

func diffTimes(got, want []time.Time) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("missing start %v (%d of %d)", want[i].UTC(), i, len(want))
		case i >= len(want):
			return fmt.Sprintf("extra start %v after %d", got[i].UTC(), len(want))
		case !got[i].Equal(want[i]):
			return fmt.Sprintf("start %d at %v, want %v", i, got[i].UTC(), want[i].UTC())
		}
	}
	return ""
}

// cronLine is a user crontab line: the five time fields and the guards
// before the command, '%' unescaped.
type cronLine struct {
	text   string
	fields [5][60]bool
	guards []string
}

func zonedLine(t *testing.T, s Schedule, sys *time.Location) cronLine {
	t.Helper()
	out, err := Crontab([]JobSpec{{Name: "x", Schedule: s}}, Options{User: true, CronZone: sys})
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	var text string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, " job skipped x") {
			text = l
		}
	}
	if strings.Contains(text, "CRON_TZ") || strings.Contains(out, "CRON_TZ") {
		t.Fatalf("CRON_TZ in\n%s", out)
	}
	return parseCronLine(t, text)
}

func parseCronLine(t *testing.T, text string) cronLine {
	t.Helper()
	f := strings.SplitN(text, " ", 6)
	if len(f) != 6 {
		t.Fatalf("cron line %q", text)
	}
	cl := cronLine{text: text}
	bounds := [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
	for i := range 5 {
		cl.fields[i] = cronValues(t, f[i], bounds[i][0], bounds[i][1])
	}
	if cl.fields[4][7] {
		cl.fields[4][0] = true
	}
	for _, part := range strings.Split(f[5], " && ") {
		if strings.HasPrefix(part, "flock ") || strings.HasPrefix(part, "sleep ") {
			break
		}
		cl.guards = append(cl.guards, strings.ReplaceAll(part, `\%`, "%"))
	}
	return cl
}

// cronValues expands a cron field: lists of *, N, A-B, each with /STEP.
func cronValues(t *testing.T, field string, lo, hi int) [60]bool {
	t.Helper()
	var set [60]bool
	for _, item := range strings.Split(field, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			var err error
			if step, err = strconv.Atoi(stepText); err != nil || step <= 0 {
				t.Fatalf("cron field %q", field)
			}
		}
		a, b := lo, hi
		if rng != "*" {
			x, y, isRange := strings.Cut(rng, "-")
			var err1, err2 error
			a, err1 = strconv.Atoi(x)
			b = a
			if isRange {
				b, err2 = strconv.Atoi(y)
			} else if hasStep {
				b = hi
			}
			if err1 != nil || err2 != nil || a < lo || b > hi || a > b {
				t.Fatalf("cron field %q", field)
			}
		}
		for v := a; v <= b; v += step {
			set[v] = true
		}
	}
	return set
}

// fires reports whether cron in the system zone starts the line at the
// wall time lt. The zoned lines have '*' in the hour field, so vixie cron
// and cronie run them at each wall time that matches, also in an hour the
// system clock repeats (their special handling of clock changes is for
// lines with fixed hours and minutes only).
func (cl cronLine) fires(lt time.Time) bool {
	_, m, d := lt.Date()
	return cl.fields[0][lt.Minute()] && cl.fields[1][lt.Hour()] && cl.fields[2][d] &&
		cl.fields[3][int(m)] && cl.fields[4][int(lt.Weekday())]
}

func (cl cronLine) simulate(t *testing.T, sys *time.Location, start, end time.Time) []time.Time {
	t.Helper()
	guard := compileGuards(t, cl.guards)
	var got []time.Time
	var off int64
	var periodEnd time.Time
	for u := start; u.Before(end); u = u.Add(time.Minute) {
		if !u.Before(periodEnd) {
			lt := u.In(sys)
			_, o := lt.Zone()
			off = int64(o)
			if _, periodEnd = lt.ZoneBounds(); periodEnd.IsZero() {
				periodEnd = end
			}
		}
		if !cl.fields[0][int((u.Unix()+off)/60%60)] || !cl.fires(u.In(sys)) {
			continue
		}
		// Cron starts a line a moment after the minute begins.
		if guard(u.Add(3 * time.Second)) {
			got = append(got, u)
		}
	}
	return got
}

// The guard forms zonedCron writes, and their Go reading.
var (
	clockRE   = `"\$\(TZ=([A-Za-z0-9_/+-]+) date -d @(\$s|\$\(\(s[+-]\d+\)\)) \+([%A-Za-z:-]+)\)"`
	testRE    = regexp.MustCompile(`^\[ ` + clockRE + ` (=|!=|-le) ("\$\(.*\)"|[0-9:-]+) \]$`)
	caseRE    = regexp.MustCompile(`^case ` + clockRE + ` in (\S+)\) true;; \*\) false;; esac$`)
	clockOnly = regexp.MustCompile(`^` + clockRE + `$`)
)

// evalGuards is the Go reading of a zoned line's guards, at instant now:
// the mirror of what sh and date(1) do with them.
func evalGuards(t *testing.T, guards []string, now time.Time) bool {
	t.Helper()
	return compileGuards(t, guards)(now)
}

// compileGuards reads the guards once into a function of the instant.
func compileGuards(t *testing.T, guards []string) func(now time.Time) bool {
	t.Helper()
	// clock reads "$(TZ=ZONE date -d @AT +FORMAT)" as a function of s.
	clock := func(m []string) func(s int64) string {
		loc, err := time.LoadLocation(m[1])
		if err != nil {
			t.Fatal(err)
		}
		var d int64
		if m[2] != "$s" {
			if d, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(m[2], "$((s"), "))"), 10, 64); err != nil {
				t.Fatalf("guard offset %q", m[2])
			}
		}
		format := m[3]
		return func(s int64) string { return strftime(time.Unix(s+d, 0).In(loc), format) }
	}
	var steps []func(s int64) bool
	setsS := false
	for _, g := range guards {
		if g == "s=$(date +%s)" {
			setsS = true
			continue
		}
		if m := testRE.FindStringSubmatch(g); m != nil {
			left, op, lit := clock(m), m[4], m[5]
			right := func(int64) string { return lit }
			if r := clockOnly.FindStringSubmatch(lit); r != nil {
				right = clock(r)
			}
			steps = append(steps, func(s int64) bool {
				l, r := left(s), right(s)
				switch op {
				case "=":
					return l == r
				case "!=":
					return l != r
				}
				a, err1 := strconv.Atoi(strings.TrimLeft(l, "0"))
				b, err2 := strconv.Atoi(r)
				if err1 != nil || err2 != nil {
					t.Fatalf("guard %q: %q -le %q", g, l, r)
				}
				return a <= b
			})
			continue
		}
		if m := caseRE.FindStringSubmatch(g); m != nil {
			v, pats := clock(m), strings.Split(m[4], "|")
			for _, p := range pats {
				if _, err := path.Match(p, ""); err != nil {
					t.Fatalf("guard %q: %v", g, err)
				}
			}
			steps = append(steps, func(s int64) bool {
				val := v(s)
				for _, p := range pats {
					if ok, _ := path.Match(p, val); ok {
						return true
					}
				}
				return false
			})
			continue
		}
		t.Fatalf("guard %q has no Go reading", g)
	}
	if len(steps) > 0 && !setsS {
		t.Fatalf("guards %q read s without setting it", guards)
	}
	return func(now time.Time) bool {
		for _, f := range steps {
			if !f(now.Unix()) {
				return false
			}
		}
		return true
	}
}

// strftime formats the date(1) conversions the guards use.
func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'u':
			fmt.Fprintf(&b, "%d", (int(t.Weekday())+6)%7+1)
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		default:
			b.WriteString("%" + format[i:i+1])
		}
	}
	return b.String()
}

// TestCronZoneGuardShell runs guards through sh and date(1), with the
// epoch of "date +%s" fixed, at instants around clock changes, and checks
// that sh agrees with evalGuards.
func TestCronZoneGuardShell(t *testing.T) {
	sh := needTool(t, "sh")
	realDate := needTool(t, "date")
	if out, err := exec.Command(realDate, "-d", "@0", "+%u").Output(); err != nil || strings.TrimSpace(string(out)) != "4" {
		t.Fatalf("date -d @0 +%%u: %q %v (the guards need GNU date)", out, err)
	}
	dir := t.TempDir()
	fake := "#!/bin/sh\nif [ \"$1\" = +%s ]; then echo \"$FAKE_EPOCH\"; exit 0; fi\nexec " + realDate + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "date"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	instants := []time.Time{
		time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC),  // 01:30 CET, before the gap
		time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC),  // 03:30 CEST; 02:30 does not exist
		time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), // 02:30 CEST, first
		time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), // 02:30 CET, repeated
		time.Date(2026, 10, 26, 1, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // 01:30 EDT, first
		time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), // 01:30 EST, repeated
		time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC),
		time.Date(2026, 8, 31, 0, 30, 0, 0, time.UTC),
	}
	lines := []string{
		"daily 02:30 tz Europe/Berlin", "daily 01:30 tz America/New_York", "monthly last-sun 02:30 tz Europe/Berlin",
		"weekly mon..fri 01:30 tz America/New_York", "monthly 31 02:30 tz Europe/Berlin", "every 15m tz Europe/Berlin",
		"OnCalendar=*-03,10-25..31 01..03:15 Europe/Berlin", "once 2026-10-25 02:30 tz Europe/Berlin",
	}
	passed := map[bool]int{}
	for _, line := range lines {
		cl := zonedLine(t, MustParse(line), time.UTC)
		guard := strings.Join(cl.guards, " && ")
		for _, at := range instants {
			for _, u := range []time.Time{at, at.Add(-30 * time.Minute), at.Add(15 * time.Minute)} {
				want := evalGuards(t, cl.guards, u)
				cmd := exec.Command(sh, "-c", guard)
				cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "FAKE_EPOCH="+strconv.FormatInt(u.Unix(), 10))
				out, err := cmd.CombinedOutput()
				if len(out) > 0 {
					t.Errorf("%q at %v: sh says %s", line, u.UTC(), out)
				}
				if (err == nil) != want {
					t.Errorf("%q at %v: sh passes=%v, Go passes=%v\nguard: %s", line, u.UTC(), err == nil, want, guard)
				}
				passed[want]++
			}
		}
	}
	if passed[true] < 10 || passed[false] < 10 {
		t.Errorf("instants exercise too little: %v", passed)
	}
}

// TestCronZoneLines pins the lines of zoned schedules: no CRON_TZ, a line
// firing every hour, and a guard only where the zone repeats the time.
func TestCronZoneLines(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	cases := []struct {
		line string
		sys  *time.Location
		want string
	}{
		{"daily 02:30 tz Europe/Berlin", time.UTC, `30 * * * * s=$(date +\%s) && [ "$(TZ=Europe/Berlin date -d @$s +\%H:\%M)" = 02:30 ] && ` +
			`[ "$(TZ=Europe/Berlin date -d @$((s-3600)) +\%H:\%M)" != "$(TZ=Europe/Berlin date -d @$s +\%H:\%M)" ] && flock`},
		{"daily 04:00 tz Europe/Berlin", kolkata, `30 * * * * s=$(date +\%s) && [ "$(TZ=Europe/Berlin date -d @$s +\%H:\%M)" = 04:00 ] && flock`},
		{"weekly mon,thu 03:00 tz America/New_York", berlin, `0 * * * * s=$(date +\%s) && case "$(TZ=America/New_York date -d @$s +\%u-\%H:\%M)" in 1-03:00|4-03:00) true;; *) false;; esac && flock`},
		{"monthly third-mon 04:00 tz Europe/Berlin", time.UTC, `0 * * * * s=$(date +\%s) && case "$(TZ=Europe/Berlin date -d @$s +\%d-\%u-\%H:\%M)" in 1[5-9]-1-04:00|20-1-04:00|21-1-04:00) true;; *) false;; esac && flock`},
		{"monthly last-sun 05:00 tz Europe/Berlin", time.UTC, `0 * * * * s=$(date +\%s) && [ "$(TZ=Europe/Berlin date -d @$s +\%u-\%H:\%M)" = 7-05:00 ] && [ "$(TZ=Europe/Berlin date -d @$((s+630000)) +\%d)" -le 7 ] && flock`},
		{"every 15m tz Asia/Kolkata", berlin, `*/15 * * * * s=$(date +\%s) && case "$(TZ=Asia/Kolkata date -d @$s +\%M)" in 00|15|30|45) true;; *) false;; esac && flock`},
		{"hourly tz Australia/Lord_Howe", time.UTC, `0,30 * * * * s=$(date +\%s) && [ "$(TZ=Australia/Lord_Howe date -d @$s +\%M)" = 00 ] && flock`},
		{"every 2m tz Asia/Kathmandu", time.UTC, `1-59/2 * * * * s=$(date +\%s) && case "$(TZ=Asia/Kathmandu date -d @$s +\%M)" in 0[02468]|1[02468]|2[02468]|3[02468]|4[02468]|5[02468]) true;; *) false;; esac && flock`},
		{"daily 02:00 tz UTC", berlin, `0 * * * * s=$(date +\%s) && [ "$(TZ=UTC date -d @$s +\%H:\%M)" = 02:00 ] && flock`},
	}
	for _, c := range cases {
		for _, user := range []bool{false, true} {
			out, err := Crontab([]JobSpec{{Name: "x", Schedule: MustParse(c.line)}}, Options{User: user, CronZone: c.sys})
			if err != nil {
				t.Fatalf("%q: %v", c.line, err)
			}
			want := c.want
			if !user {
				want = strings.Replace(want, " * * * * ", " * * * * root ", 1)
			}
			if !strings.Contains(out, "\n"+want+" -n ") || strings.Contains(out, "CRON_TZ") {
				t.Errorf("%q (cron in %s, user %v):\n%s\nwant line starting %s", c.line, c.sys, user, out, want)
			}
		}
	}
	for _, line := range []string{"OnCalendar=*-*-* 00:00:30 Europe/Berlin", "OnCalendar=*-02~03 Europe/Berlin", "OnCalendar=2026,2027-01-01 Europe/Berlin"} {
		if _, err := Crontab([]JobSpec{{Name: "x", Schedule: MustParse(line)}}, Options{}); err == nil {
			t.Errorf("%q rendered for cron", line)
		}
	}
}

func TestInspectZone(t *testing.T) {
	for zone, want := range map[string]string{
		"UTC":                 "[0] []",
		"Europe/Berlin":       "[0] [{3600 120 180}]",
		"America/New_York":    "[0] [{3600 60 120}]",
		"Asia/Kolkata":        "[30] []",
		"Australia/Lord_Howe": "[0 30] [{1800 90 120}]",
	} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		zc := inspectZone(loc)
		if got := fmt.Sprint(zc.fractions, " ", zc.backs); got != want {
			t.Errorf("%s: %s, want %s", zone, got, want)
		}
	}
}
