package schedule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderApply(t *testing.T) {
	ctx := context.Background()
	jobs := []JobSpec{{Name: "a", Schedule: MustParse("daily 02:00")}, {Name: "b", Schedule: MustParse("monthly third-mon 04:00")}}
	o := Options{Binary: "/usr/bin/bunker"}

	root := t.TempDir()
	sys := Installer{Root: root, Manifest: SystemManifest}
	p, err := Render(SystemdSystem, jobs, o, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != SystemUnitDir || len(p.Files) != 5 || strings.Join(p.Timers, ",") != "bunker-a.timer,bunker-b.timer" {
		t.Fatalf("plan %+v", p)
	}
	done, err := sys.Apply(ctx, p, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 6 || !strings.Contains(done[5], "systemd is not running") {
		t.Errorf("done %q", done)
	}
	cp, _ := Render(CronSystem, jobs, o, "")
	if _, err := sys.Apply(ctx, cp, "", true); err != nil {
		t.Fatal(err)
	}
	cron, err := os.ReadFile(filepath.Join(root, "etc/cron.d/bunker"))
	if err != nil || !strings.Contains(string(cron), " root [ \"$(date +\\%u)\" = 1 ] && flock -n -E 75 /run/lock/bunker-b.lock") {
		t.Errorf("cron.d: %s %v", cron, err)
	}
	done, err = sys.Unapply(ctx, SystemdSystem, SystemUnitDir, "", true)
	if err != nil || len(done) != 5 {
		t.Errorf("unapply %q %v", done, err)
	}
	// The cron file is still installed and listed.
	if m, err := sys.ReadManifest(); err != nil || len(m.Files) != 1 || m.Files[0].Path != "/etc/cron.d/bunker" {
		t.Errorf("manifest after removing the units: %+v %v", m, err)
	}
	done, err = sys.Unapply(ctx, CronSystem, "", "", true)
	if err != nil || len(done) != 1 || done[0] != "removed /etc/cron.d/bunker" {
		t.Errorf("unapply all %q %v", done, err)
	}
	if _, err := os.Stat(filepath.Join(root, SystemManifest)); !os.IsNotExist(err) {
		t.Error("manifest left behind")
	}

	// User targets: units under the home, crontab block in a file.
	home := "/home/ann"
	up, err := Render(SystemdUser, jobs, o, home)
	if err != nil || up.Dir != "/home/ann/.config/systemd/user" || strings.Contains(string(up.Files[0].Data), "ProtectSystem") {
		t.Fatalf("user plan %+v %v", up, err)
	}
	if _, err := Render(SystemdUser, jobs, o, "relative"); err == nil {
		t.Error("relative home accepted")
	}
	user := Installer{Root: root, Manifest: UserManifest("/home/ann/.local/state/bunker")}
	tab := "/var/spool/cron/crontabs/ann"
	os.MkdirAll(filepath.Join(root, filepath.Dir(tab)), 0o755)
	os.WriteFile(filepath.Join(root, tab), []byte("MAILTO=ann\n5 * * * * mine\n"), 0o600)
	crp, err := Render(CronUser, jobs, o, home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := user.Apply(ctx, crp, tab, true); err != nil {
		t.Fatal(err)
	}
	if _, err := user.Apply(ctx, crp, tab, true); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(root, tab))
	if strings.Count(string(data), BlockBegin) != 1 || !strings.HasPrefix(string(data), "MAILTO=ann\n5 * * * * mine\n# BEGIN bunker\n") ||
		strings.Contains(string(data), " root ") {
		t.Errorf("user crontab:\n%s", data)
	}
	if m, _ := user.ReadManifest(); !m.CrontabBlock {
		t.Error("manifest lacks the crontab block")
	}
	if _, err := user.Unapply(ctx, CronUser, "", tab, true); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(root, tab))
	if string(data) != "MAILTO=ann\n5 * * * * mine\n" {
		t.Errorf("after removal:\n%s", data)
	}
	if _, err := Render(Target(0), jobs, o, home); err == nil {
		t.Error("unknown target rendered")
	}
}

func TestMissingZones(t *testing.T) {
	jobs := []JobSpec{
		{Name: "a", Schedule: MustParse("daily 02:00 tz Europe/Berlin")},
		{Name: "b", Schedule: MustParse("daily 03:00 tz Europe/Berlin")},
		{Name: "c", Schedule: MustParse("daily 04:00 tz UTC")},
		{Name: "d", Schedule: MustParse("daily 05:00")},
	}
	p, err := Render(CronSystem, jobs, Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Zones, ",") != "Europe/Berlin,UTC" {
		t.Errorf("zones %q", p.Zones)
	}
	root := t.TempDir()
	if got := p.MissingZones(root); len(got) != 1 || got[0] != "Europe/Berlin" {
		t.Errorf("missing %q", got)
	}
	zi := filepath.Join(root, ZoneInfoDir, "Europe/Berlin")
	os.MkdirAll(filepath.Dir(zi), 0o755)
	os.WriteFile(zi, []byte("TZif"), 0o644)
	if got := p.MissingZones(root); len(got) != 0 {
		t.Errorf("missing %q with the zone present", got)
	}
	if sp, _ := Render(SystemdSystem, jobs, Options{}, ""); len(sp.Zones) != 0 {
		t.Errorf("systemd plan reads zones %q", sp.Zones)
	}
}
