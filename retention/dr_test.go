package retention

import (
	"fmt"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

// The retention scheme of the disaster-recovery design guide (Cisco DRaaS
// 1.0, "retention window"): keep every recovery point of the last 24 hours,
// one per 4 hours between 24 and 48 hours, then only bookmarks, and nothing
// older than 4 weeks. As bunker flags:
//
//	--keep-within 24h --keep-within-every 48h:4h --keep-tag bookmark --remove-older-than 4w
var drPolicy = Policy{
	Within: MustParseDuration("24h"),
	Every:  []Every{{Within: MustParseDuration("48h"), Width: MustParseDuration("4h")}},
	Tags:   []TagList{{"bookmark"}},
	MaxAge: MustParseDuration("4w"),
}

// drHistory is a recovery point every 20 minutes for 6 weeks in Berlin,
// across the 2026-03-29 change to summer time; every 37th point is a
// bookmark.
func drHistory(t testing.TB) (snaps []*repo.Snapshot, now time.Time) {
	berlin := mustLoad(t, "Europe/Berlin")
	start := time.Date(2026, 3, 1, 0, 7, 0, 0, berlin)
	end := time.Date(2026, 4, 12, 9, 0, 0, 0, berlin)
	i := 0
	for tm := start; !tm.After(end); tm = tm.Add(20 * time.Minute) {
		sn := &repo.Snapshot{Time: tm, Hostname: "dr", Job: "vm-replica", ID: repo.FileID(fmt.Appendf(nil, "dr %d", i))}
		if i%37 == 0 {
			sn.Tags = []string{"bookmark"}
		}
		snaps = append(snaps, sn)
		i++
	}
	return snaps, end.Add(5 * time.Minute)
}

func TestDisasterRecoveryScenario(t *testing.T) {
	snaps, now := drHistory(t)
	berlin := mustLoad(t, "Europe/Berlin")
	o := Options{Now: now, Location: berlin, GroupBy: DefaultGroupBy}
	res, err := Apply(snaps, drPolicy, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 1 || res.Groups[0].Refused != "" {
		t.Fatalf("groups %d, refused %q", len(res.Groups), res.Groups[0].Refused)
	}
	latest := snaps[len(snaps)-1].Time
	slices4h := map[time.Time]int{} // 4-hour slice start -> snapshots kept in it (24-48 h, untagged)
	for _, d := range res.Groups[0].Decisions {
		sn := d.Snapshot
		age := latest.Sub(sn.Time)
		bookmark := len(sn.Tags) > 0
		switch {
		case now.Sub(sn.Time) >= 4*7*24*time.Hour:
			if d.Keep {
				t.Errorf("%v (older than 4 weeks) kept: %v", sn.Time, d.Reasons)
			}
		case age < 24*time.Hour:
			if !d.Keep {
				t.Errorf("%v (within 24 h) removed", sn.Time)
			}
		case age < 48*time.Hour:
			if bookmark {
				if !d.Keep {
					t.Errorf("bookmark %v removed", sn.Time)
				}
				break
			}
			if d.Keep {
				lt := sn.Time.In(berlin)
				slice := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour()/4*4, 0, 0, 0, berlin)
				slices4h[slice]++
			}
		default:
			if d.Keep != bookmark {
				t.Errorf("%v (older than 48 h, bookmark %v): keep %v %v", sn.Time, bookmark, d.Keep, d.Reasons)
			}
		}
	}
	// 24 hours of 4-hour slices: 6 or 7 (the slices at both ends are partial),
	// each with at most one kept snapshot (a slice's newest point may be a
	// bookmark, which is kept as such, or fall just inside 24 h).
	if len(slices4h) < 5 || len(slices4h) > 7 {
		t.Errorf("4-hour slices between 24 and 48 h with a kept snapshot: %d, want 6 or so: %v", len(slices4h), slices4h)
	}
	for s, n := range slices4h {
		if n != 1 {
			t.Errorf("slice %v: %d snapshots kept, want 1", s, n)
		}
	}
	checkGolden(t, "disaster_recovery", render(drPolicy, o, res))

	// When backups stop for 5 weeks, the same policy would remove
	// everything: refused unless --allow-empty, and with it the minimum
	// retention still holds.
	later := now.Add(5 * 7 * 24 * time.Hour)
	res, err = Apply(snaps, drPolicy, Options{Now: later, Location: berlin, GroupBy: DefaultGroupBy})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused()) != 1 || len(res.Remove()) != 0 {
		t.Errorf("stale history: refused %d, remove %d; want the group refused", len(res.Refused()), len(res.Remove()))
	}
	res, err = Apply(snaps, drPolicy, Options{Now: later, Location: berlin, GroupBy: DefaultGroupBy, AllowEmpty: true, MinRetention: MustParseDuration("6w")})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Groups[0].Decisions {
		young := d.Snapshot.Time.After(later.AddDate(0, 0, -42))
		if d.Keep != young {
			t.Errorf("%v: keep %v, want %v (min-retention 6w) %v", d.Snapshot.Time, d.Keep, young, d.Reasons)
		}
	}
}
