package schedule

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	home := "/home/ann"
	tab := "/var/spool/cron/crontabs/ann"
	places := Places{Root: root, Home: home, Crontab: tab}
	jobs := []JobSpec{
		{Name: "a", Schedule: MustParse("daily 02:00")},
		{Name: "b", Schedule: MustParse("weekly mon 03:00 tz Europe/Berlin")},
	}
	o := Options{Binary: "/usr/bin/bunker", Config: "/etc/bunker/config.yaml"}
	got, err := Inspect(ctx, places, jobs, o)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty root: %v %v", got, err)
	}

	sys := Installer{Root: root, Manifest: SystemManifest}
	user := Installer{Root: root, Manifest: UserManifest(home + "/.local/state/bunker")}
	apply := func(in Installer, tgt Target, js []JobSpec, o Options) {
		t.Helper()
		p, err := Render(tgt, js, o, home)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Apply(ctx, p, tab, false); err != nil {
			t.Fatal(err)
		}
	}
	apply(sys, SystemdSystem, jobs, o)
	apply(sys, CronSystem, jobs[:1], o)
	apply(user, SystemdUser, jobs[1:], o)
	os.MkdirAll(filepath.Join(root, filepath.Dir(tab)), 0o755)
	os.WriteFile(filepath.Join(root, tab), []byte("5 * * * * mine job run a\n"), 0o600)
	apply(user, CronUser, jobs, o)
	wants := filepath.Join(root, SystemUnitDir, "timers.target.wants")
	os.MkdirAll(wants, 0o755)
	if err := os.Symlink("../bunker-a.timer", filepath.Join(wants, "bunker-a.timer")); err != nil {
		t.Fatal(err)
	}

	got, err = Inspect(ctx, places, jobs, o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Installed{
		"a": {
			{Target: SystemdSystem, Path: "/etc/systemd/system/bunker-a.timer", Enabled: true},
			{Target: CronSystem, Path: "/etc/cron.d/bunker", Enabled: true},
			{Target: CronUser, Path: tab, Enabled: true},
		},
		"b": {
			{Target: SystemdSystem, Path: "/etc/systemd/system/bunker-b.timer"},
			{Target: SystemdUser, Path: "/home/ann/.config/systemd/user/bunker-b.timer"},
			{Target: CronUser, Path: tab, Enabled: true},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("installed:\n%+v\nwant\n%+v", got, want)
	}

	// b moves, a goes from the job file: a is stale everywhere, b where
	// its schedule is part of what is installed.
	moved := []JobSpec{{Name: "b", Schedule: MustParse("weekly mon 04:00 tz Europe/Berlin")}}
	got, err = Inspect(ctx, places, moved, o)
	if err != nil {
		t.Fatal(err)
	}
	for job, ins := range got {
		for _, in := range ins {
			if !in.Stale {
				t.Errorf("%s %s %s not stale", job, in.Target, in.Path)
			}
		}
	}
	if len(got["a"]) != 3 || len(got["b"]) != 3 {
		t.Errorf("after the move: %+v", got)
	}

	// Another binary makes every installation stale; a hand-edited unit
	// only its own.
	got, _ = Inspect(ctx, places, jobs, Options{Binary: "/opt/bunker", Config: o.Config})
	for job, ins := range got {
		for _, in := range ins {
			if !in.Stale {
				t.Errorf("other binary: %s %s not stale", job, in.Target)
			}
		}
	}
	svc := filepath.Join(root, SystemUnitDir, "bunker-a.service")
	data, _ := os.ReadFile(svc)
	os.WriteFile(svc, []byte(strings.Replace(string(data), "Nice=19", "Nice=5", 1)), 0o644)
	got, _ = Inspect(ctx, places, jobs, o)
	if !got["a"][0].Stale || got["a"][1].Stale || got["b"][0].Stale {
		t.Errorf("edited bunker-a.service: %+v", got)
	}
}

func TestCronJobLines(t *testing.T) {
	text := "0 1 * * * me job run outside\n" + BlockBegin + "\n# job run comment\nSHELL=/bin/sh\n" +
		"0 2 * * * root flock -n /l /b job run a\n0 3 * * * /b --config '/x y' job run b-2\n" + BlockEnd + "\n"
	got := cronJobLines(text)
	want := map[string]string{"a": "0 2 * * * root flock -n /l /b job run a", "b-2": "0 3 * * * /b --config '/x y' job run b-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}
