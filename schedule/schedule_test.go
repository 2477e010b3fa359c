package schedule

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// forms covers every schedule form of the grammar.
var forms = []struct {
	name, line string
}{
	{"once", "once 2026-12-01 01:00"},
	{"hourly", "hourly"},
	{"daily", "daily 02:00"},
	{"daily-window", "daily 01:00 window 1h"},
	{"weekly", "weekly mon 03:00"},
	{"weekly-two", "weekly mon,thu 03:00"},
	{"weekly-range", "weekly mon..fri 22:30"},
	{"monthly", "monthly 1 04:00"},
	{"monthly-first-sat", "monthly first-sat 02:00"},
	{"monthly-third-mon", "monthly third-mon 04:00"},
	{"monthly-last-mon", "monthly last-mon 05:00"},
	{"every-6h", "every 6h"},
	{"every-15m", "every 15m"},
	{"tz", "daily 02:00 tz Europe/Berlin"},
	{"tz-once", "once 2026-10-25 02:30 tz Europe/Berlin"},
	{"tz-weekly", "weekly mon..fri 01:30 tz America/New_York"},
	{"tz-monthly", "monthly 31 02:30 tz Europe/Berlin"},
	{"tz-third-mon", "monthly third-mon 04:00 tz America/New_York"},
	{"tz-last-sun", "monthly last-sun 02:30 tz Europe/Berlin"},
	{"tz-every", "every 15m tz Asia/Kolkata"},
	{"tz-raw", "OnCalendar=Mon..Fri *-*-* 08..17/3:00,30 Europe/Berlin window 10m"},
	{"raw", "OnCalendar=Mon..Fri *-*-* 22:00"},
	{"raw-bare", "Sat,Sun 08:00/15 window 10m"},
}

func TestGolden(t *testing.T) {
	o := Options{Binary: "/usr/bin/bunker", Config: "/etc/bunker/config.yaml"}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			s, err := Parse(f.line)
			if err != nil {
				t.Fatal(err)
			}
			job := JobSpec{Name: "nightly", Schedule: s}
			var b strings.Builder
			fmt.Fprintf(&b, "# schedule: %s\n# canonical: %s\n# OnCalendar: %s\n", f.line, s, s.OnCalendar())
			base := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
			loc, _ := time.LoadLocation("Europe/Berlin")
			for i, n := 0, base; i < 3; i++ {
				// Times are computed in the schedule's zone or UTC.
				n = nextIn(s, n, loc)
				if n.IsZero() {
					b.WriteString("# next: none\n")
					break
				}
				fmt.Fprintf(&b, "# next: %s\n", n.Format(time.RFC3339))
			}
			units, err := SystemdUnits(job, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range units {
				fmt.Fprintf(&b, "\n==> %s (%o)\n%s", u.Name, u.Mode, u.Data)
			}
			cron, cerr := Crontab([]JobSpec{job}, o)
			if cerr != nil {
				fmt.Fprintf(&b, "\n==> cron.d error\n%v\n", cerr)
			} else {
				fmt.Fprintf(&b, "\n==> /etc/cron.d/bunker\n%s", cron)
			}
			uo := o
			uo.User = true
			ucron, uerr := Crontab([]JobSpec{job}, uo)
			if uerr != nil {
				fmt.Fprintf(&b, "\n==> user crontab error\n%v\n", uerr)
			} else {
				fmt.Fprintf(&b, "\n==> user crontab\n%s", ucron)
			}
			golden(t, filepath.Join("testdata", f.name+".golden"), b.String())
		})
	}
}

// nextIn evaluates Next with the test's fixed local zone: schedules
// without a zone use time.Local, which the test pins to UTC.
func nextIn(s Schedule, after time.Time, _ *time.Location) time.Time {
	return s.Next(after).UTC()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from output (run go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestMain(m *testing.M) {
	time.Local = time.UTC
	os.Setenv("TZ", "UTC")
	os.Exit(m.Run())
}

func TestParseErrors(t *testing.T) {
	bad := []string{
		"", "   ", "once", "once 2026-13-01 01:00", "once 2026-12-01 25:00", "daily 2:0",
		"daily 02:00 03:00", "weekly xyz 03:00", "weekly sun..mon 03:00", "monthly 32 04:00",
		"monthly fifth-mon 04:00", "monthly third-xyz 04:00", "every 7h", "every 7m",
		"every 0h", "every h", "daily 02:00 window", "daily 02:00 window -1h",
		"daily 02:00 window 8d", "daily 02:00 tz Mars/Olympus", "daily 02:00 window 1h window 2h",
		"hourly 5", "third monday", "OnCalendar=", "OnCalendar=garbage here",
		"OnCalendar=*-*-* 25:00", "every 6h window 1.5s", "hourly window 1h", "every 15m window 20m", "daily window 1d",
	}
	for _, line := range bad {
		if s, err := Parse(line); err == nil {
			t.Errorf("Parse(%q) = %v, want error", line, s)
		} else if !strings.Contains(err.Error(), "invalid schedule") {
			t.Errorf("Parse(%q) error %q lacks context", line, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range forms {
		s := MustParse(f.line)
		s2, err := Parse(s.String())
		if err != nil {
			t.Fatalf("reparse %q: %v", s.String(), err)
		}
		if !s.Equal(s2) || s.OnCalendar() != s2.OnCalendar() {
			t.Errorf("%q: round trip %q -> %q", f.line, s, s2)
		}
	}
	if s := MustParse("weekly"); s.String() != "weekly mon 00:00" {
		t.Errorf("weekly defaults: %s", s)
	}
	if s := MustParse("every 60m"); s.String() != "every 1h" {
		t.Errorf("every 60m: %s", s)
	}
}

func TestNext(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		line, after, want string
	}{
		{"daily 02:00", "2026-01-01 02:00", "2026-01-02 02:00"},
		{"daily 02:00", "2026-01-01 01:59", "2026-01-01 02:00"},
		{"hourly", "2026-01-01 23:30", "2026-01-02 00:00"},
		{"every 6h", "2026-01-01 06:00", "2026-01-01 12:00"},
		{"every 15m", "2026-01-01 06:59", "2026-01-01 07:00"},
		{"monthly third-mon 04:00", "2026-11-22 00:00", "2026-12-21 04:00"},
		{"monthly third-mon 04:00", "2026-11-01 00:00", "2026-11-16 04:00"},
		{"monthly last-mon 05:00", "2026-11-22 00:00", "2026-11-30 05:00"},
		{"monthly last-fri 05:00", "2026-02-01 00:00", "2026-02-27 05:00"},
		{"monthly 31 04:00", "2026-04-01 00:00", "2026-05-31 04:00"},
		{"monthly 29 04:00", "2027-02-01 00:00", "2027-03-29 04:00"},
		{"weekly mon,thu 03:00", "2026-11-23 03:00", "2026-11-26 03:00"},
		{"once 2026-12-01 01:00", "2026-11-22 00:00", "2026-12-01 01:00"},
		{"once 2026-12-01 01:00", "2026-12-01 01:00", ""},
		{"daily 02:00 tz Europe/Berlin", "2026-07-01 00:00", "2026-07-02 00:00"},
		{"daily 02:00 tz Europe/Berlin", "2026-01-01 00:00", "2026-01-01 01:00"},
		// 02:30 does not exist in Berlin on 2026-03-29.
		{"daily 02:30 tz Europe/Berlin", "2026-03-29 00:00", "2026-03-30 00:30"},
		{"OnCalendar=*-02-29 12:00", "2026-01-01 00:00", "2028-02-29 12:00"},
		{"OnCalendar=*-02~03", "2026-11-22 00:00", "2027-02-26 00:00"},
		{"quarterly", "2026-11-22 00:00", "2027-01-01 00:00"},
	}
	for _, c := range cases {
		s, err := Parse(c.line)
		if err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		got := s.Next(utc(c.after))
		want := time.Time{}
		if c.want != "" {
			want = utc(c.want)
		}
		if !got.Equal(want) {
			t.Errorf("%q Next(%s) = %v, want %v", c.line, c.after, got.UTC(), want)
		}
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

var elapseRE = regexp.MustCompile(`(?m)^\s+(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$`)

// TestSystemdAnalyzeCalendar checks that systemd accepts every generated
// OnCalendar and elapses at exactly the times Next computes.
func TestSystemdAnalyzeCalendar(t *testing.T) {
	sa := needTool(t, "systemd-analyze")
	lines := []string{"monthly 31 04:00", "monthly last-fri 05:00", "OnCalendar=*-02~03", "weekly sat,sun 10:00",
		"OnCalendar=Mon..Wed,Fri *-1..6/2-1,15 8..17/3:00,30", "OnCalendar=*-*~01..03 23:59:59",
		"OnCalendar=2027-02-29", "OnCalendar=Sun *-*~07/2 01:30 America/New_York", "daily 02:30 tz Europe/Berlin",
		"every 15m tz Asia/Kolkata", "OnCalendar=*-*-* *:30 Europe/Berlin", "every 30m tz America/New_York", "semiannually", "OnCalendar=*:0/20", "hourly window 5m"}
	for _, f := range forms {
		lines = append(lines, f.line)
	}
	lines = append(lines, zoned...)
	for _, base := range []time.Time{
		time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC),  // spring forward in Europe
		time.Date(2026, 10, 24, 22, 59, 0, 0, time.UTC), // fall back in Europe
		time.Date(2026, 10, 25, 0, 45, 0, 0, time.UTC),  // between the two 02:30s
		time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC),    // fall back in New York
		time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC),     // spring forward in New York
		time.Date(2026, 4, 4, 14, 0, 0, 0, time.UTC),    // Lord Howe sets its clock back 30 minutes
		time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC),
	} {
		checkAgainstSystemd(t, sa, lines, base)
	}
}

func checkAgainstSystemd(t *testing.T, sa string, lines []string, base time.Time) {
	for _, line := range lines {
		s := MustParse(line)
		cmd := exec.Command(sa, "calendar", "--iterations=5", "--base-time=@"+fmt.Sprint(base.Unix()), s.OnCalendar())
		cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze calendar %q: %v\n%s", s.OnCalendar(), err, out)
			continue
		}
		if strings.Contains(string(out), "Next elapse: never") {
			if n := s.Next(base); !n.IsZero() {
				t.Errorf("%q: Next = %v, systemd says never", s.OnCalendar(), n)
			}
			continue
		}
		m := elapseRE.FindAllStringSubmatch(string(out), -1)
		if len(m) == 0 {
			t.Errorf("%q: no elapses in\n%s", s.OnCalendar(), out)
			continue
		}
		at := base
		for _, sm := range m {
			want, err := time.Parse("2006-01-02 15:04:05", sm[1])
			if err != nil {
				t.Fatal(err)
			}
			at = s.Next(at)
			if !at.Equal(want) {
				t.Errorf("%q: Next = %v, systemd says %v", s.OnCalendar(), at.UTC(), want)
				break
			}
		}
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on generated units.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa := needTool(t, "systemd-analyze")
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []bool{false, true} {
		dir := t.TempDir()
		var jobs []JobSpec
		for i, f := range forms {
			jobs = append(jobs, JobSpec{Name: fmt.Sprintf("job%d-%s", i, f.name), Schedule: MustParse(f.line)})
		}
		files, err := SystemdAll(jobs, Options{Binary: bin, Config: "/etc/bunker/my config%.yaml", User: user})
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		args = append(args, "verify")
		if user {
			args = append(args, "--user")
		}
		for _, f := range files {
			p := filepath.Join(dir, f.Name)
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f.Name, ".timer") {
				args = append(args, p)
			}
		}
		// A concrete notify instance, as OnFailure= would start it.
		inst := filepath.Join(dir, "bunker-notify@bunker-job0-once.service.service")
		if err := os.Symlink(filepath.Join(dir, NotifyUnit), inst); err != nil {
			t.Fatal(err)
		}
		args = append(args, inst)
		cmd := exec.Command(sa, args...)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning", "XDG_RUNTIME_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify (user=%v): %v\n%s", user, err, out)
		}
	}
}

// TestUnitsKeepDevices guards the promise that units can read disks.
func TestUnitsKeepDevices(t *testing.T) {
	for _, user := range []bool{false, true} {
		files, err := SystemdAll([]JobSpec{{Name: "a", Schedule: MustParse("daily")}}, Options{User: user})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			for _, bad := range []string{"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "PrivateUsers", "ProtectHome"} {
				if strings.Contains(string(f.Data), bad+"=") {
					t.Errorf("%s sets %s, which blocks block devices", f.Name, bad)
				}
			}
		}
	}
}

func TestUnitQuoting(t *testing.T) {
	files, err := SystemdUnits(JobSpec{Name: "a", Schedule: MustParse("daily")},
		Options{Binary: "/opt/my bunker/bunker", Config: `/etc/b"%$.yaml`})
	if err != nil {
		t.Fatal(err)
	}
	want := `ExecStart="/opt/my bunker/bunker" --config "/etc/b\"%%$$.yaml" job run a` + "\n"
	if !strings.Contains(string(files[0].Data), want) {
		t.Errorf("service:\n%s\nwant line %q", files[0].Data, want)
	}
	cron, err := Crontab([]JobSpec{{Name: "a", Schedule: MustParse("daily")}},
		Options{Binary: "/opt/my bunker/bunker", Config: `/etc/b'%.yaml`})
	if err != nil {
		t.Fatal(err)
	}
	wantCron := `0 0 * * * root flock -n -E 75 /run/lock/bunker-a.lock '/opt/my bunker/bunker' --config '/etc/b'\''\%.yaml' job run a` +
		` || [ $? -ne 75 ] || '/opt/my bunker/bunker' --config '/etc/b'\''\%.yaml' job skipped a`
	if !strings.Contains(cron, wantCron+"\n") {
		t.Errorf("cron:\n%s\nwant line %q", cron, wantCron)
	}
	if _, err := SystemdUnits(JobSpec{Name: "a", Schedule: MustParse("daily")}, Options{Binary: "bunker"}); err == nil {
		t.Error("relative binary accepted")
	}
	for _, n := range []string{"", "-x", "a b", "a/b", "a.b", "notify", strings.Repeat("x", 65)} {
		if ValidJobName(n) == nil {
			t.Errorf("job name %q accepted", n)
		}
	}
}

func TestJobFromUnit(t *testing.T) {
	for in, want := range map[string]string{
		"bunker-nightly.service": "nightly", "bunker-a_b-c.timer": "a_b-c",
		"nightly.service": "", "bunker-.service": "", "bunker-x": "",
	} {
		got, ok := JobFromUnit(in)
		if got != want || ok != (want != "") {
			t.Errorf("JobFromUnit(%q) = %q, %v", in, got, ok)
		}
	}
}

func TestCronRejects(t *testing.T) {
	for _, line := range []string{"OnCalendar=*-*-* 00:00:30", "OnCalendar=*-02~03", "OnCalendar=2026,2027-01-01"} {
		if _, err := Crontab([]JobSpec{{Name: "x", Schedule: MustParse(line)}}, Options{}); err == nil {
			t.Errorf("%q rendered for cron", line)
		}
	}
}

// TestCronGuards runs the generated guard of a third-Monday line through sh
// with a faked date to check the shell really selects the day.
func TestCronGuards(t *testing.T) {
	sh := needTool(t, "sh")
	out, err := Crontab([]JobSpec{{Name: "x", Schedule: MustParse("monthly third-mon 04:00")}}, Options{User: true})
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "0 4 15-21 * * ") {
			line = strings.TrimPrefix(l, "0 4 15-21 * * ")
		}
	}
	if line == "" {
		t.Fatalf("no third-monday line in\n%s", out)
	}
	guard := strings.ReplaceAll(strings.SplitN(line, " && flock", 2)[0], `\%`, "%")
	dir := t.TempDir()
	for day, want := range map[string]bool{"1": true, "2": false, "7": false} {
		fake := "#!/bin/sh\necho " + day + "\n"
		if err := os.WriteFile(filepath.Join(dir, "date"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sh, "-c", guard)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		err := cmd.Run()
		if (err == nil) != want {
			t.Errorf("guard %q with weekday %s: err=%v, want pass=%v", guard, day, err, want)
		}
	}
}

func TestMergeBlock(t *testing.T) {
	block := BlockBegin + "\n0 1 * * * x\n" + BlockEnd + "\n"
	user := "MAILTO=me\n5 * * * * other\n"
	merged, err := MergeBlock(user, block)
	if err != nil {
		t.Fatal(err)
	}
	if merged != user+block {
		t.Errorf("append: %q", merged)
	}
	newBlock := BlockBegin + "\n0 2 * * * y\n" + BlockEnd + "\n"
	again, err := MergeBlock(merged+"7 * * * * tail\n", newBlock)
	if err != nil {
		t.Fatal(err)
	}
	if again != user+newBlock+"7 * * * * tail\n" {
		t.Errorf("replace: %q", again)
	}
	removed, ok, err := RemoveBlock(again)
	if err != nil || !ok || removed != user+"7 * * * * tail\n" {
		t.Errorf("remove: %q %v %v", removed, ok, err)
	}
	if _, ok, _ := RemoveBlock(user); ok {
		t.Error("removed a block that is not there")
	}
	if got, _ := MergeBlock("x", block); got != "x\n"+block {
		t.Errorf("no trailing newline: %q", got)
	}
	for _, broken := range []string{BlockBegin + "\nx\n", BlockEnd + "\n", block + block} {
		if _, err := MergeBlock(broken, block); err == nil {
			t.Errorf("broken crontab %q accepted", broken)
		}
	}
}

func TestInstallRemove(t *testing.T) {
	root := t.TempDir()
	in := Installer{Root: root, Manifest: SystemManifest}
	jobs := []JobSpec{{Name: "a", Schedule: MustParse("daily")}, {Name: "b", Schedule: MustParse("hourly")}}
	files, err := SystemdAll(jobs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// An admin's own unit in the same directory must survive everything.
	own := filepath.Join(root, "etc/systemd/system/other.service")
	if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := in.Install(SystemUnitDir, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 5 {
		t.Errorf("written %v", res.Written)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, SystemUnitDir, f.Name))
		if err != nil || string(data) != string(f.Data) {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	res, err = in.Install(SystemUnitDir, files)
	if err != nil || len(res.Unchanged) != 5 || len(res.Written) != 0 {
		t.Errorf("reinstall: %+v %v", res, err)
	}
	// Drop job b: its units go, a's stay.
	files2, _ := SystemdAll(jobs[:1], Options{})
	res, err = in.Install(SystemUnitDir, files2)
	if err != nil || len(res.Removed) != 2 {
		t.Fatalf("shrink: %+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(root, SystemUnitDir, "bunker-b.timer")); !os.IsNotExist(err) {
		t.Error("bunker-b.timer left behind")
	}
	cron, _ := Crontab(jobs, Options{})
	if _, err := in.Install(CronDir, []File{{Name: CronFile, Data: []byte(cron), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	m, err := in.ReadManifest()
	if err != nil || len(m.Files) != 4 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	res, err = in.Remove("")
	if err != nil || len(res.Removed) != 4 {
		t.Fatalf("remove: %+v %v", res, err)
	}
	left := map[string]bool{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left[strings.TrimPrefix(p, root)] = true
		}
		return nil
	})
	if len(left) != 1 || !left["/etc/systemd/system/other.service"] {
		t.Errorf("after remove: %v", left)
	}
	if res, err := in.Remove(""); err != nil || len(res.Removed) != 0 {
		t.Errorf("second remove: %+v %v", res, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, fm := range forms {
		f.Add(fm.line)
	}
	for _, s := range []string{"monthly last-sun", "every 60m", "Mon *-*~07/1 05:00", "*-*-* 00/6:00:00 UTC",
		"quarterly", "2026-12-01", "12:00", "*-1..3,5/2-~1", "Mon..Sun", "calendar *-*-* *:*:*", "tz UTC daily"} {
		f.Add(s)
	}
	base := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string) {
		s, err := Parse(line)
		if err != nil {
			return
		}
		n := s.Next(base)
		if !n.IsZero() && !n.After(base) {
			t.Fatalf("%q: Next %v not after %v", line, n, base)
		}
		// The canonical form must parse back to the same schedule.
		s2, err := Parse(s.String())
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", line, s.String(), err)
		}
		if s2.OnCalendar() != s.OnCalendar() || !s2.Next(base).Equal(n) {
			t.Fatalf("%q: canonical %q changes meaning", line, s.String())
		}
		SystemdUnits(JobSpec{Name: "f", Schedule: s}, Options{})
		Crontab([]JobSpec{{Name: "f", Schedule: s}}, Options{CronZone: time.UTC})
	})
}
