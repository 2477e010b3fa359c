package retention

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// history generates a deterministic snapshot history in Europe/Berlin from
// October 2025 to April 2026: a snapshot every 11 to 17 hours, plus hourly
// runs across both daylight saving changes (2025-10-26 and 2026-03-29) and
// across the year end. Every 9th snapshot is tagged "weekly-ref", every 40th
// "monthly". Times are round-tripped through their RFC 3339 form, so they
// carry a fixed offset as snapshots loaded from a repository do.
func history(t testing.TB) []*repo.Snapshot {
	t.Helper()
	berlin := mustLoad(t, "Europe/Berlin")
	var times []time.Time
	seed := uint32(12345)
	for tm := time.Date(2025, 10, 1, 0, 17, 0, 0, berlin); tm.Before(time.Date(2026, 4, 20, 0, 0, 0, 0, berlin)); {
		times = append(times, tm)
		seed = seed*1103515245 + 12345
		tm = tm.Add(time.Duration(11*60+int(seed>>16)%(6*60)) * time.Minute)
	}
	for _, start := range []time.Time{
		time.Date(2025, 10, 25, 22, 5, 0, 0, berlin), // across fall back (02:00-03:00 twice)
		time.Date(2025, 12, 31, 18, 45, 0, 0, berlin),
		time.Date(2026, 3, 28, 22, 50, 0, 0, berlin), // across spring forward (02:00-03:00 missing)
	} {
		for i := range 10 {
			times = append(times, start.Add(time.Duration(i)*time.Hour))
		}
	}
	var snaps []*repo.Snapshot
	for i, tm := range times {
		parsed, err := time.Parse(time.RFC3339, tm.Format(time.RFC3339))
		if err != nil {
			t.Fatal(err)
		}
		sn := &repo.Snapshot{Time: parsed, Hostname: "web1", Paths: []string{"/srv"}, ID: repo.FileID(fmt.Appendf(nil, "snapshot %d", i))}
		switch {
		case i%40 == 0:
			sn.Tags = []string{"monthly"}
		case i%9 == 0:
			sn.Tags = []string{"weekly-ref"}
		}
		snaps = append(snaps, sn)
	}
	return snaps
}

// render prints a result as the golden files hold it: per group, every
// snapshot with its verdict and reasons.
func render(p Policy, o Options, res *Result) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "policy: %s\nnow: %s\n", p, o.Now.Format(time.RFC3339))
	if o.Location != nil {
		fmt.Fprintf(&b, "location: %s\n", o.Location)
	}
	if !o.MinRetention.IsZero() {
		fmt.Fprintf(&b, "min-retention: %s\n", o.MinRetention)
	}
	keep, remove := 0, 0
	for _, g := range res.Groups {
		fmt.Fprintf(&b, "\ngroup: %s\n", g.Key)
		if g.Refused != "" {
			fmt.Fprintf(&b, "refused: %s\n", g.Refused)
		}
		for _, d := range g.Decisions {
			v := "remove"
			if d.Keep {
				v = "keep  "
				keep++
			} else {
				remove++
			}
			fmt.Fprintf(&b, "%s  %s  %s  %s\n", d.Snapshot.ID.Str(), d.Snapshot.Time.Format("2006-01-02 15:04 -0700 Mon"), v, FormatReasons(d.Reasons))
		}
	}
	fmt.Fprintf(&b, "\nkeep %d, remove %d\n", keep, remove)
	return b.Bytes()
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./retention -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w []byte
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if !bytes.Equal(g, w) {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run go test ./retention -update after checking the change)", path, i+1, g, w)
			}
		}
	}
}

func TestGolden(t *testing.T) {
	snaps := history(t)
	if len(snaps) < 300 {
		t.Fatalf("history has %d snapshots, want a few hundred", len(snaps))
	}
	now := time.Date(2026, 4, 20, 9, 0, 0, 0, time.UTC)
	berlin := mustLoad(t, "Europe/Berlin")
	for _, tc := range []struct {
		name string
		p    Policy
		o    Options
	}{
		{"last10", Policy{Last: 10}, Options{}},
		{"hourly48", Policy{Hourly: 48}, Options{}},
		{"daily14_weekly8_monthly6_yearly3", Policy{Daily: 14, Weekly: 8, Monthly: 6, Yearly: 3}, Options{}},
		{"daily30_utc", Policy{Daily: 30}, Options{Location: time.UTC}},
		{"weekly_unlimited", Policy{Weekly: Unlimited}, Options{}},
		{"within_mixed", Policy{Within: MustParseDuration("3d"), WithinDaily: MustParseDuration("2w"), WithinWeekly: MustParseDuration("2m"), WithinMonthly: MustParseDuration("1y")}, Options{}},
		{"within_hourly_yearly", Policy{WithinHourly: MustParseDuration("1d12h"), WithinYearly: MustParseDuration("2y")}, Options{}},
		{"tags_maxage", Policy{Last: 3, Tags: []TagList{{"monthly"}, {"weekly-ref"}}, MaxAge: MustParseDuration("3m")}, Options{}},
		{"daily7_minretention", Policy{Daily: 7}, Options{MinRetention: MustParseDuration("30d")}},
		{"dst_window_hourly_berlin", Policy{Hourly: Unlimited, MaxAge: MustParseDuration("6m")}, Options{Location: berlin}},
		{"every_1d6h_berlin", Policy{Every: []Every{{Within: MustParseDuration("1y"), Width: MustParseDuration("1d6h")}}}, Options{Location: berlin}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Now = now
			o.GroupBy = DefaultGroupBy
			res, err := Apply(snaps, tc.p, o)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, render(tc.p, o, res))
		})
	}
}
