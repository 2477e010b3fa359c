package retention

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

// snap makes a snapshot of host h, path /data at RFC 3339 time ts.
func snap(t testing.TB, ts string, tags ...string) *repo.Snapshot {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		t.Fatal(err)
	}
	return &repo.Snapshot{Time: tm, Hostname: "h", Paths: []string{"/data"}, Tags: tags, ID: repo.FileID([]byte(ts + strings.Join(tags, ",")))}
}

// verdicts renders a result as "time keep|remove [reasons]" lines, newest first.
func verdicts(r *Result) []string {
	var out []string
	for _, g := range r.Groups {
		for _, d := range g.Decisions {
			v := "remove"
			if d.Keep {
				v = "keep"
			}
			out = append(out, d.Snapshot.Time.Format(time.RFC3339)+" "+v+" ["+FormatReasons(d.Reasons)+"]")
		}
	}
	return out
}

func TestApply(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		snaps []string // "time" or "time tag1,tag2"
		p     Policy
		o     Options
		want  []string
	}{
		{
			name:  "keep-last",
			snaps: []string{"2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z", "2026-11-03T10:00:00Z", "2026-11-04T10:00:00Z"},
			p:     Policy{Last: 2},
			want: []string{
				"2026-11-04T10:00:00Z keep [last]",
				"2026-11-03T10:00:00Z keep [last]",
				"2026-11-02T10:00:00Z remove []",
				"2026-11-01T10:00:00Z remove []",
			},
		},
		{
			name:  "daily keeps the newest of each day",
			snaps: []string{"2026-11-18T23:00:00Z", "2026-11-19T01:00:00Z", "2026-11-19T13:00:00Z", "2026-11-20T08:00:00Z", "2026-11-20T09:00:00Z"},
			p:     Policy{Daily: 2},
			want: []string{
				"2026-11-20T09:00:00Z keep [daily 2026-11-20]",
				"2026-11-20T08:00:00Z remove []",
				"2026-11-19T13:00:00Z keep [daily 2026-11-19]",
				"2026-11-19T01:00:00Z remove []",
				"2026-11-18T23:00:00Z remove []",
			},
		},
		{
			name: "ISO weeks across the year end",
			// 2025-12-28 is a Sunday (2025-W52); 2025-12-29 starts 2026-W01.
			snaps: []string{"2025-12-28T12:00:00Z", "2025-12-29T12:00:00Z", "2026-01-02T12:00:00Z"},
			p:     Policy{Weekly: 5},
			want: []string{
				"2026-01-02T12:00:00Z keep [weekly 2026-W01]",
				"2025-12-29T12:00:00Z remove []",
				"2025-12-28T12:00:00Z keep [weekly 2025-W52]",
			},
		},
		{
			name:  "monthly and yearly at the year end",
			snaps: []string{"2025-12-31T23:30:00Z", "2026-01-01T00:10:00Z", "2026-01-15T00:10:00Z"},
			p:     Policy{Monthly: 1, Yearly: 2},
			want: []string{
				"2026-01-15T00:10:00Z keep [monthly 2026-01, yearly 2026]",
				"2026-01-01T00:10:00Z remove []",
				"2025-12-31T23:30:00Z keep [yearly 2025]",
			},
		},
		{
			name: "buckets in the snapshot's recorded offset",
			// 23:30 and 00:30 local (+01:00) are two days although both are the same UTC day.
			snaps: []string{"2026-03-01T23:30:00+01:00", "2026-03-02T00:30:00+01:00"},
			p:     Policy{Daily: 2},
			want: []string{
				"2026-03-02T00:30:00+01:00 keep [daily 2026-03-02]",
				"2026-03-01T23:30:00+01:00 keep [daily 2026-03-01]",
			},
		},
		{
			name:  "buckets in Options.Location",
			snaps: []string{"2026-03-01T23:30:00+01:00", "2026-03-02T00:30:00+01:00"},
			p:     Policy{Daily: 2},
			o:     Options{Location: time.UTC},
			want: []string{
				"2026-03-02T00:30:00+01:00 keep [daily 2026-03-01]",
				"2026-03-01T23:30:00+01:00 remove []",
			},
		},
		{
			name: "the repeated hour of a DST change is one hourly bucket",
			// 02:30 CEST and 02:30 CET on 2025-10-26 in Berlin.
			snaps: []string{"2025-10-26T01:30:00+02:00", "2025-10-26T02:30:00+02:00", "2025-10-26T02:30:00+01:00", "2025-10-26T03:30:00+01:00"},
			p:     Policy{Hourly: 10},
			o:     Options{Location: mustLoad(t, "Europe/Berlin")},
			want: []string{
				"2025-10-26T03:30:00+01:00 keep [hourly 2025-10-26 03:00]",
				"2025-10-26T02:30:00+01:00 keep [hourly 2025-10-26 02:00]",
				"2025-10-26T02:30:00+02:00 remove []",
				"2025-10-26T01:30:00+02:00 keep [hourly 2025-10-26 01:00]",
			},
		},
		{
			name:  "within is measured from the newest snapshot, not now",
			snaps: []string{"2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z", "2026-01-09T12:00:00Z", "2026-01-10T00:00:00Z"},
			p:     Policy{Within: MustParseDuration("2d")},
			want: []string{
				"2026-01-10T00:00:00Z keep [within 2d]",
				"2026-01-09T12:00:00Z keep [within 2d]",
				"2026-01-08T00:00:00Z remove []",
				"2026-01-01T00:00:00Z remove []",
			},
		},
		{
			name:  "within-daily",
			snaps: []string{"2026-11-17T10:00:00Z", "2026-11-19T10:00:00Z", "2026-11-19T20:00:00Z", "2026-11-20T10:00:00Z"},
			p:     Policy{WithinDaily: MustParseDuration("2d")},
			want: []string{
				"2026-11-20T10:00:00Z keep [daily 2026-11-20 within 2d]",
				"2026-11-19T20:00:00Z keep [daily 2026-11-19 within 2d]",
				"2026-11-19T10:00:00Z remove []",
				"2026-11-17T10:00:00Z remove []",
			},
		},
		{
			name:  "keep-tag and union with daily",
			snaps: []string{"2026-11-18T10:00:00Z monthly", "2026-11-19T10:00:00Z a,b", "2026-11-19T11:00:00Z a", "2026-11-20T10:00:00Z"},
			p:     Policy{Daily: 1, Tags: []TagList{{"monthly"}, {"a", "b"}}},
			want: []string{
				"2026-11-20T10:00:00Z keep [daily 2026-11-20]",
				"2026-11-19T11:00:00Z remove []",
				"2026-11-19T10:00:00Z keep [tag a,b]",
				"2026-11-18T10:00:00Z keep [tag monthly]",
			},
		},
		{
			name:  "unlimited daily",
			snaps: []string{"2020-01-01T10:00:00Z", "2020-01-01T11:00:00Z", "2026-11-20T10:00:00Z"},
			p:     Policy{Daily: Unlimited},
			want: []string{
				"2026-11-20T10:00:00Z keep [daily 2026-11-20]",
				"2020-01-01T11:00:00Z keep [daily 2020-01-01]",
				"2020-01-01T10:00:00Z remove []",
			},
		},
		{
			name:  "max age removes even tagged snapshots",
			snaps: []string{"2026-10-01T10:00:00Z keep", "2026-11-10T10:00:00Z keep", "2026-11-21T10:00:00Z"},
			p:     Policy{Last: 1, Tags: []TagList{{"keep"}}, MaxAge: MustParseDuration("4w")},
			want: []string{
				"2026-11-21T10:00:00Z keep [last]",
				"2026-11-10T10:00:00Z keep [tag keep]",
				"2026-10-01T10:00:00Z remove [older than 4w]",
			},
		},
		{
			name:  "minimum retention",
			snaps: []string{"2026-10-01T10:00:00Z", "2026-11-01T10:00:00Z", "2026-11-21T10:00:00Z"},
			p:     Policy{Last: 1},
			o:     Options{MinRetention: MustParseDuration("30d")},
			want: []string{
				"2026-11-21T10:00:00Z keep [last, min-retention (younger than 30d)]",
				"2026-11-01T10:00:00Z keep [min-retention (younger than 30d)]",
				"2026-10-01T10:00:00Z remove []",
			},
		},
		{
			name:  "minimum retention beats max age",
			snaps: []string{"2026-11-01T10:00:00Z", "2026-11-21T10:00:00Z"},
			p:     Policy{Last: 1, MaxAge: MustParseDuration("1w")},
			o:     Options{MinRetention: MustParseDuration("30d")},
			want: []string{
				"2026-11-21T10:00:00Z keep [last, min-retention (younger than 30d)]",
				"2026-11-01T10:00:00Z keep [min-retention (younger than 30d)]",
			},
		},
		{
			name:  "last snapshot of its group",
			snaps: []string{"2026-01-01T10:00:00Z monthly", "2026-11-20T10:00:00Z"},
			p:     Policy{Tags: []TagList{{"monthly"}}},
			want: []string{
				"2026-11-20T10:00:00Z keep [last snapshot of its group]",
				"2026-01-01T10:00:00Z keep [tag monthly]",
			},
		},
		{
			name:  "allow empty lets the newest go",
			snaps: []string{"2026-01-01T10:00:00Z monthly", "2026-11-20T10:00:00Z"},
			p:     Policy{Tags: []TagList{{"monthly"}}},
			o:     Options{AllowEmpty: true},
			want: []string{
				"2026-11-20T10:00:00Z remove []",
				"2026-01-01T10:00:00Z keep [tag monthly]",
			},
		},
		{
			name:  "a policy keeping nothing is refused",
			snaps: []string{"2026-01-01T10:00:00Z", "2026-11-20T10:00:00Z"},
			p:     Policy{Tags: []TagList{{"mnothly"}}},
			want: []string{
				"2026-11-20T10:00:00Z keep [policy would remove every snapshot of its group]",
				"2026-01-01T10:00:00Z keep [policy would remove every snapshot of its group]",
			},
		},
		{
			name:  "a policy keeping nothing with allow empty",
			snaps: []string{"2026-01-01T10:00:00Z", "2026-11-20T10:00:00Z"},
			p:     Policy{Tags: []TagList{{"mnothly"}}},
			o:     Options{AllowEmpty: true, MinRetention: MustParseDuration("7d")},
			want: []string{
				"2026-11-20T10:00:00Z keep [min-retention (younger than 7d)]",
				"2026-01-01T10:00:00Z remove []",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var snaps []*repo.Snapshot
			for _, s := range tc.snaps {
				ts, tags, _ := strings.Cut(s, " ")
				var tl []string
				if tags != "" {
					tl = strings.Split(tags, ",")
				}
				snaps = append(snaps, snap(t, ts, tl...))
			}
			o := tc.o
			o.Now = now
			res, err := Apply(snaps, tc.p, o)
			if err != nil {
				t.Fatal(err)
			}
			if got := verdicts(res); !slices.Equal(got, tc.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

func TestApplyRefusalExplains(t *testing.T) {
	snaps := []*repo.Snapshot{snap(t, "2026-01-01T10:00:00Z"), snap(t, "2026-01-02T10:00:00Z")}
	res, err := Apply(snaps, Policy{Tags: []TagList{{"x"}}}, Options{Now: time.Now(), GroupBy: DefaultGroupBy})
	if err != nil {
		t.Fatal(err)
	}
	ref := res.Refused()
	if len(ref) != 1 {
		t.Fatalf("refused groups = %d, want 1", len(ref))
	}
	want := "the policy (keep tag x) keeps none of the 2 snapshots of host h, paths [/data]; refusing to remove them all (allow it with --allow-empty)"
	if ref[0].Refused != want {
		t.Errorf("Refused = %q\nwant      %q", ref[0].Refused, want)
	}
	if len(res.Remove()) != 0 || len(res.Keep()) != 2 {
		t.Errorf("remove %d keep %d", len(res.Remove()), len(res.Keep()))
	}
}

func TestApplyProtected(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a, b, c, d := snap(t, "2026-01-01T10:00:00Z"), snap(t, "2026-02-01T10:00:00Z"), snap(t, "2026-03-01T10:00:00Z"), snap(t, "2026-11-20T10:00:00Z")
	o := Options{Now: now, Protected: map[repo.ID]time.Time{
		a.ID: {},
		b.ID: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		c.ID: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), // expired
	}}
	res, err := Apply([]*repo.Snapshot{a, b, c, d}, Policy{Last: 1}, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2026-11-20T10:00:00Z keep [last]",
		"2026-03-01T10:00:00Z remove []",
		"2026-02-01T10:00:00Z keep [protected until 2027-01-01 00:00]",
		"2026-01-01T10:00:00Z keep [protected]",
	}
	if got := verdicts(res); !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestForgetByID(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a, b, c := snap(t, "2026-01-01T10:00:00Z"), snap(t, "2026-02-01T10:00:00Z"), snap(t, "2026-11-20T10:00:00Z")
	o := Options{Now: now, MinRetention: MustParseDuration("30d"), Protected: map[repo.ID]time.Time{b.ID: {}}}
	res, err := Forget([]*repo.Snapshot{a, b, c}, []repo.ID{a.ID, b.ID, c.ID, a.ID}, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2026-11-20T10:00:00Z keep [min-retention (younger than 30d)]",
		"2026-02-01T10:00:00Z keep [protected]",
		"2026-01-01T10:00:00Z remove [forget by id]",
	}
	if got := verdicts(res); !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	if _, err := Forget([]*repo.Snapshot{a}, []repo.ID{b.ID}, o); err == nil {
		t.Error("Forget of an unknown id: no error")
	}
	var guarded []string
	for _, d := range res.Guarded() {
		guarded = append(guarded, d.Snapshot.Time.Format(time.RFC3339))
	}
	if want := []string{"2026-11-20T10:00:00Z", "2026-02-01T10:00:00Z"}; !slices.Equal(guarded, want) {
		t.Errorf("Guarded() = %v, want %v", guarded, want)
	}
}

// TestApplyGuarded: only snapshots the rules would remove are marked
// Guarded; one kept by a rule and also protected is not.
func TestApplyGuarded(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a, b, c := snap(t, "2026-01-01T10:00:00Z"), snap(t, "2026-02-01T10:00:00Z"), snap(t, "2026-03-01T10:00:00Z", "x")
	o := Options{Now: now, GroupBy: DefaultGroupBy, Protected: map[repo.ID]time.Time{a.ID: {}, b.ID: {}}}
	res, err := Apply([]*repo.Snapshot{a, b, c}, Policy{Tags: []TagList{{"y"}}, Last: 2}, o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range res.Guarded() {
		got[d.Snapshot.Time.Format("2006-01")] = true
	}
	if want := map[string]bool{"2026-01": true}; !maps.Equal(got, want) {
		t.Errorf("guarded %v, want %v (b is kept by last, a only by its protection)", got, want)
	}
	// The newest snapshot kept only because it is the newest is guarded too.
	old := snap(t, "2025-12-01T10:00:00Z", "old")
	res, err = Apply([]*repo.Snapshot{old, a, b}, Policy{Tags: []TagList{{"old"}}}, Options{Now: now, GroupBy: DefaultGroupBy})
	if err != nil {
		t.Fatal(err)
	}
	if g := res.Guarded(); len(g) != 1 || g[0].Snapshot != b || g[0].Reasons[0] != ReasonLastOfGroup {
		t.Errorf("Guarded() = %+v, want the newest snapshot, kept as the last of its group", g)
	}
}

// TestLastOfSource: when the groups are wider than a source (one group of
// everything, or by tags), a policy still never takes the last snapshot of
// a host and its paths, unless AllowEmpty.
func TestLastOfSource(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a1, a2 := snap(t, "2026-11-01T10:00:00Z"), snap(t, "2026-11-02T10:00:00Z")
	other := snap(t, "2026-10-01T10:00:00Z")
	other.Hostname = "other"
	etc := snap(t, "2026-10-02T10:00:00Z", "weekly")
	etc.Paths = []string{"/etc"}
	etcOld := snap(t, "2026-09-02T10:00:00Z", "weekly")
	etcOld.Paths = []string{"/etc"}
	snaps := []*repo.Snapshot{a1, a2, other, etc, etcOld}
	for _, tc := range []struct {
		groupBy string
		allow   bool
		want    []string
	}{
		{"", false, []string{
			"2026-11-02T10:00:00Z keep [last]",
			"2026-11-01T10:00:00Z remove []",
			"2026-10-02T10:00:00Z keep [last snapshot of its source]",
			"2026-10-01T10:00:00Z keep [last snapshot of its source]",
			"2026-09-02T10:00:00Z remove []",
		}},
		{"tags", false, []string{
			"2026-11-02T10:00:00Z keep [last]",
			"2026-11-01T10:00:00Z remove []",
			"2026-10-01T10:00:00Z keep [last snapshot of its source]",
			"2026-10-02T10:00:00Z keep [last]",
			"2026-09-02T10:00:00Z remove []",
		}},
		{"", true, []string{
			"2026-11-02T10:00:00Z keep [last]",
			"2026-11-01T10:00:00Z remove []",
			"2026-10-02T10:00:00Z remove []",
			"2026-10-01T10:00:00Z remove []",
			"2026-09-02T10:00:00Z remove []",
		}},
	} {
		by, err := ParseGroupBy(tc.groupBy)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Apply(snaps, Policy{Last: 1}, Options{Now: now, GroupBy: by, AllowEmpty: tc.allow})
		if err != nil {
			t.Fatal(err)
		}
		if got := verdicts(res); !slices.Equal(got, tc.want) {
			t.Errorf("group by %q, allow-empty %v:\n%s\nwant\n%s", tc.groupBy, tc.allow, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

func TestGrouping(t *testing.T) {
	mk := func(host, job string, paths []string, disks []repo.Disk, tags ...string) *repo.Snapshot {
		return &repo.Snapshot{Time: time.Date(2026, 11, 20, 10, len(paths)+len(disks), 0, 0, time.UTC), Hostname: host, Job: job, Paths: paths, Disks: disks, Tags: tags}
	}
	sda := []repo.Disk{{Name: "vm1-root", Source: "/dev/sdb"}}
	sdc := []repo.Disk{{Name: "vm1-root", Source: "/dev/sdc"}}
	for _, tc := range []struct {
		by   string
		a, b *repo.Snapshot
		same bool
	}{
		{"host,paths", mk("a", "", []string{"/x", "/y"}, nil), mk("a", "", []string{"/y", "/x"}, nil), true},
		{"host,paths", mk("a", "", []string{"/x"}, nil), mk("b", "", []string{"/x"}, nil), false},
		{"paths", mk("a", "", []string{"/x"}, nil), mk("b", "", []string{"/x"}, nil), true},
		{"host,paths", mk("a", "", []string{"/dev/sdb"}, sda), mk("a", "", []string{"/dev/sdc"}, sdc), true},
		{"host,paths", mk("a", "", []string{"/dev/sdb"}, sda), mk("a", "", []string{"/dev/sdb"}, []repo.Disk{{Name: "other", Source: "/dev/sdb"}}), false},
		{"host,paths", mk("a", "nightly", []string{"/x"}, nil), mk("a", "nightly", []string{"/x", "/z"}, nil), true},
		{"host,paths", mk("a", "nightly", []string{"/x"}, nil), mk("a", "weekly", []string{"/x"}, nil), false},
		{"host,paths,tags", mk("a", "", []string{"/x"}, nil, "t1", "t2"), mk("a", "", []string{"/x"}, nil, "t2", "t1"), true},
		{"host,paths,tags", mk("a", "", []string{"/x"}, nil, "t1"), mk("a", "", []string{"/x"}, nil), false},
		{"", mk("a", "", []string{"/x"}, nil, "t1"), mk("b", "j", []string{"/y"}, nil), true},
	} {
		by, err := ParseGroupBy(tc.by)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(GroupSnapshots([]*repo.Snapshot{tc.a, tc.b}, by)) == 1; got != tc.same {
			t.Errorf("group-by %q: %s / %s: same group = %v, want %v", tc.by, by.Key(tc.a), by.Key(tc.b), got, tc.same)
		}
	}
	if k := DefaultGroupBy.Key(mk("a", "", []string{"/home", "/dev/sdb"}, sda)); k.String() != "host a, paths [/home disk:vm1-root]" {
		t.Errorf("key = %q", k)
	}
	if _, err := ParseGroupBy("host,color"); err == nil {
		t.Error("ParseGroupBy(host,color): no error")
	}
}

func TestApplyGroupsIndependently(t *testing.T) {
	a1, a2 := snap(t, "2026-11-19T10:00:00Z"), snap(t, "2026-11-20T10:00:00Z")
	b1 := snap(t, "2026-11-01T10:00:00Z")
	b1.Hostname = "other"
	res, err := Apply([]*repo.Snapshot{a1, a2, b1}, Policy{Last: 1}, Options{Now: time.Now(), GroupBy: DefaultGroupBy})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 2 {
		t.Fatalf("groups = %d", len(res.Groups))
	}
	if rm := res.Remove(); len(rm) != 1 || rm[0] != a1 {
		t.Errorf("removed %v, want only %v", rm, a1.Time)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p   Policy
		err string
	}{
		{Policy{}, "no keep rule"},
		{Policy{Daily: -2}, "keep-daily -2 is negative"},
		{Policy{Last: 1, Within: Duration{Days: -1}}, "negative duration"},
		{Policy{Every: []Every{{Within: Duration{Days: 2}, Width: Duration{Months: 1}}}}, "no fixed length"},
		{Policy{Every: []Every{{Within: Duration{Days: 2}}}}, "width must be positive"},
		{Policy{Tags: []TagList{{}}}, "empty keep-tag"},
		{Policy{Daily: Unlimited}, ""},
	} {
		err := tc.p.Validate()
		if tc.err == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.p, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: err = %v, want %q", tc.p, err, tc.err)
		}
		if _, aerr := Apply(nil, tc.p, Options{Now: time.Now()}); aerr == nil {
			t.Errorf("Apply accepted invalid policy %+v", tc.p)
		}
	}
}

func TestParseEvery(t *testing.T) {
	e, err := ParseEvery("48h:4h")
	if err != nil || e.Within != (Duration{Hours: 48}) || e.Width != (Duration{Hours: 4}) {
		t.Fatalf("ParseEvery = %+v, %v", e, err)
	}
	for _, bad := range []string{"48h", "48h:1m", "48h:0h", "0h:4h", "x:4h", "48h:-4h"} {
		if _, err := ParseEvery(bad); err == nil {
			t.Errorf("ParseEvery(%q): no error", bad)
		}
	}
	if _, err := ParseTagList("a,,b"); err == nil {
		t.Error("ParseTagList(a,,b): no error")
	}
}

// TestGroupKeyString: a group of untagged snapshots says so when grouped by
// tags, rather than looking like the group of everything.
func TestGroupKeyString(t *testing.T) {
	sn := snap(t, "2026-11-01T10:00:00Z")
	for _, tc := range []struct{ by, want string }{
		{"", "all snapshots"},
		{"tags", "no tags"},
		{"host,tags", "host h, no tags"},
		{"host,paths", "host h, paths [/data]"},
	} {
		by, err := ParseGroupBy(tc.by)
		if err != nil {
			t.Fatal(err)
		}
		if got := by.Key(sn).String(); got != tc.want {
			t.Errorf("group by %q: %q, want %q", tc.by, got, tc.want)
		}
	}
}
