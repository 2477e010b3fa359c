package retention

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

// Options are the context of a retention decision: the clock, the calendar,
// grouping and the guarantees that hold whatever the policy says.
type Options struct {
	// Now is the current time, for MinRetention, MaxAge and the expiry of
	// protections. It must be set.
	Now time.Time
	// Location, when set, is the time zone of the calendar buckets. When
	// nil, each snapshot's time is bucketed in the offset it was recorded
	// with (the local time of the host that wrote it).
	Location *time.Location
	// GroupBy separates snapshots into groups that are treated independently.
	GroupBy GroupBy
	// MinRetention: no snapshot younger than this is removed, whatever the
	// policy or the ids given. It is the repository's setting.
	MinRetention Duration
	// Protected lists protected snapshots with the end of their protection;
	// a zero time protects until unprotected.
	Protected map[repo.ID]time.Time
	// AllowEmpty lets a policy remove every snapshot of a group, including
	// the newest.
	AllowEmpty bool
}

// Result is the outcome of Apply or Forget: per group, a decision for every
// snapshot.
type Result struct {
	Groups []*Group `json:"groups"`
}

// Group is the decisions for one group, newest snapshot first.
type Group struct {
	Key       GroupKey   `json:"key"`
	Decisions []Decision `json:"snapshots"`
	// Refused is set when the policy would have removed every snapshot of
	// the group; then nothing of it is removed and Refused says why.
	Refused string `json:"refused,omitempty"`
}

// Decision is the verdict on one snapshot.
type Decision struct {
	Snapshot *repo.Snapshot `json:"-"`
	Keep     bool           `json:"keep"`
	// Reasons say why it is kept ("daily 2026-11-20", "within 7d",
	// "protected") or, for some removals, why it is removed ("older than 4w").
	Reasons []string `json:"reasons,omitempty"`
	// Guarded is set when the rules, or in Forget the ids given, would
	// remove the snapshot but a guarantee keeps it: a protection, the
	// minimum retention, or being the newest snapshot of its group. Reasons
	// then name only the guarantees.
	Guarded bool `json:"guarded,omitempty"`
}

// Keep returns the snapshots kept, in group order.
func (r *Result) Keep() []*repo.Snapshot { return r.filter(true) }

// Remove returns the snapshots to remove, in group order.
func (r *Result) Remove() []*repo.Snapshot { return r.filter(false) }

func (r *Result) filter(keep bool) []*repo.Snapshot {
	var out []*repo.Snapshot
	for _, g := range r.Groups {
		for _, d := range g.Decisions {
			if d.Keep == keep {
				out = append(out, d.Snapshot)
			}
		}
	}
	return out
}

// Guarded returns the decisions of the snapshots that the rules or the ids
// would remove but a guarantee keeps, in group order.
func (r *Result) Guarded() []Decision {
	var out []Decision
	for _, g := range r.Groups {
		for _, d := range g.Decisions {
			if d.Guarded {
				out = append(out, d)
			}
		}
	}
	return out
}

// Refused returns the groups the policy would have emptied.
func (r *Result) Refused() []*Group {
	var out []*Group
	for _, g := range r.Groups {
		if g.Refused != "" {
			out = append(out, g)
		}
	}
	return out
}

// Reason texts of the guarantees.
const (
	ReasonLastOfGroup = "last snapshot of its group"
	// ReasonLastOfSource keeps the newest snapshot of a host and its paths
	// (or disks, or job) that a wider group would have removed.
	ReasonLastOfSource = "last snapshot of its source"
	ReasonProtected    = "protected"
	// ReasonMinRetention begins the reason of a snapshot younger than the
	// minimum retention: "min-retention (younger than 30d)".
	ReasonMinRetention = "min-retention"
	reasonRefused      = "policy would remove every snapshot of its group"
)

// GroupSnapshots splits snaps into groups by g, each sorted newest first
// (equal times by id), groups in the order of their newest snapshot, newest
// first.
func GroupSnapshots(snaps []*repo.Snapshot, g GroupBy) []*Group {
	byKey := map[string]*Group{}
	var groups []*Group
	for _, sn := range snaps {
		k := g.Key(sn)
		grp := byKey[k.id()]
		if grp == nil {
			grp = &Group{Key: k}
			byKey[k.id()] = grp
			groups = append(groups, grp)
		}
		grp.Decisions = append(grp.Decisions, Decision{Snapshot: sn})
	}
	for _, grp := range groups {
		sort.SliceStable(grp.Decisions, func(i, j int) bool {
			return newer(grp.Decisions[i].Snapshot, grp.Decisions[j].Snapshot)
		})
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i].Decisions[0].Snapshot.Time, groups[j].Decisions[0].Snapshot.Time
		if !a.Equal(b) {
			return a.After(b)
		}
		return groups[i].Key.id() < groups[j].Key.id()
	})
	return groups
}

// Apply decides, for every snapshot, whether policy p keeps it, then
// enforces the guarantees of o. It fails only on an invalid policy or
// options; a group the policy would empty is reported in Group.Refused.
func Apply(snaps []*repo.Snapshot, p Policy, o Options) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if o.Now.IsZero() {
		return nil, errors.New("apply retention policy: no current time given")
	}
	res := &Result{Groups: GroupSnapshots(snaps, o.GroupBy)}
	for _, g := range res.Groups {
		applyRules(g, p, o)
		anyKept := false
		for _, d := range g.Decisions {
			anyKept = anyKept || d.Keep
		}
		if !anyKept && !o.AllowEmpty {
			g.Refused = fmt.Sprintf("the policy (%s) keeps none of the %d snapshots of %s; refusing to remove them all (allow it with --allow-empty)",
				p, len(g.Decisions), g.Key)
			for i := range g.Decisions {
				g.Decisions[i].Keep = true
				g.Decisions[i].Reasons = append(g.Decisions[i].Reasons, reasonRefused)
			}
			continue
		}
		applyGuarantees(g, o)
		if !o.AllowEmpty && !g.Decisions[0].Keep {
			g.Decisions[0].Keep = true
			g.Decisions[0].Guarded = true
			g.Decisions[0].Reasons = []string{ReasonLastOfGroup}
		}
	}
	if !o.AllowEmpty {
		keepLastOfSource(res)
	}
	return res, nil
}

// keepLastOfSource keeps the newest snapshot of every source (host and
// paths, disks or job: DefaultGroupBy) when its group is a wider one
// (--group-by tags, or one group of everything), so that no policy leaves
// a machine or a path without a backup.
func keepLastOfSource(res *Result) {
	newest := map[string]*Decision{}
	for _, g := range res.Groups {
		for i := range g.Decisions {
			d := &g.Decisions[i]
			k := DefaultGroupBy.Key(d.Snapshot).id()
			if n := newest[k]; n == nil || newer(d.Snapshot, n.Snapshot) {
				newest[k] = d
			}
		}
	}
	for _, d := range newest {
		if !d.Keep {
			d.Keep = true
			d.Guarded = true
			d.Reasons = []string{ReasonLastOfSource}
		}
	}
}

// newer orders snapshots as GroupSnapshots does: later time first, equal
// times by id.
func newer(a, b *repo.Snapshot) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.ID.String() < b.ID.String()
}

// Forget decides on removing the snapshots with the given ids (forget by
// id): each is removed unless protected or younger than the minimum
// retention. The last-snapshot-of-group rule does not apply: naming a
// snapshot is explicit. ids not found in snaps are an error.
func Forget(snaps []*repo.Snapshot, ids []repo.ID, o Options) (*Result, error) {
	if o.Now.IsZero() {
		return nil, errors.New("forget snapshots: no current time given")
	}
	byID := map[repo.ID]*repo.Snapshot{}
	for _, sn := range snaps {
		byID[sn.ID] = sn
	}
	var sel []*repo.Snapshot
	seen := map[repo.ID]bool{}
	for _, id := range ids {
		sn := byID[id]
		if sn == nil {
			return nil, fmt.Errorf("forget snapshot %s: no such snapshot", id.Str())
		}
		if !seen[id] {
			seen[id] = true
			sel = append(sel, sn)
		}
	}
	res := &Result{Groups: GroupSnapshots(sel, o.GroupBy)}
	for _, g := range res.Groups {
		for i := range g.Decisions {
			g.Decisions[i].Reasons = []string{"forget by id"}
		}
		applyGuarantees(g, o)
	}
	return res, nil
}

// applyGuarantees keeps protected snapshots and those younger than the
// minimum retention.
func applyGuarantees(g *Group, o Options) {
	minCut := time.Time{}
	if !o.MinRetention.IsZero() {
		minCut = o.MinRetention.Before(o.Now)
	}
	for i := range g.Decisions {
		d := &g.Decisions[i]
		var why []string
		if until, ok := o.Protected[d.Snapshot.ID]; ok && (until.IsZero() || o.Now.Before(until)) {
			if until.IsZero() {
				why = append(why, ReasonProtected)
			} else {
				why = append(why, ReasonProtected+" until "+until.Format("2006-01-02 15:04"))
			}
		}
		if !minCut.IsZero() && d.Snapshot.Time.After(minCut) {
			why = append(why, ReasonMinRetention+" (younger than "+o.MinRetention.String()+")")
		}
		if len(why) == 0 {
			continue
		}
		if !d.Keep {
			d.Keep = true
			d.Guarded = true
			d.Reasons = nil
		}
		d.Reasons = append(d.Reasons, why...)
	}
}

// bucket is one calendar bucket rule: it keeps the newest snapshot of each
// of count buckets (count < 0: all), or of each bucket within a duration.
type bucket struct {
	count  int
	within Duration
	cutoff time.Time
	key    func(t time.Time) (int64, string)
	label  string
	last   int64
	seen   bool
}

func hourKey(t time.Time) (int64, string) {
	return int64(t.Year())*1000000 + int64(t.Month())*10000 + int64(t.Day())*100 + int64(t.Hour()), t.Format("2006-01-02 15:00")
}

func dayKey(t time.Time) (int64, string) {
	return int64(t.Year())*10000 + int64(t.Month())*100 + int64(t.Day()), t.Format("2006-01-02")
}

func weekKey(t time.Time) (int64, string) {
	y, w := t.ISOWeek()
	return int64(y)*100 + int64(w), fmt.Sprintf("%04d-W%02d", y, w)
}

func monthKey(t time.Time) (int64, string) {
	return int64(t.Year())*100 + int64(t.Month()), t.Format("2006-01")
}

func yearKey(t time.Time) (int64, string) { return int64(t.Year()), t.Format("2006") }

// everyKey slices local wall-clock time into width-wide slices aligned to
// the epoch (so widths dividing a day start at local midnight). The
// repeated hour of a daylight saving change falls into one slice.
func everyKey(width time.Duration) func(t time.Time) (int64, string) {
	return func(t time.Time) (int64, string) {
		wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		w := int64(width / time.Second)
		s := wall.Unix()
		k := s / w
		if s%w < 0 {
			k--
		}
		start := time.Unix(k*w, 0).UTC()
		return k, start.Format("2006-01-02 15:04")
	}
}

// applyRules sets Keep and Reasons of every decision of g by the keep rules
// of p, visiting snapshots newest first as restic does.
func applyRules(g *Group, p Policy, o Options) {
	local := func(t time.Time) time.Time {
		if o.Location != nil {
			return t.In(o.Location)
		}
		return t
	}
	latest := local(g.Decisions[0].Snapshot.Time)
	counted := []*bucket{
		{count: p.Hourly, key: hourKey, label: "hourly"},
		{count: p.Daily, key: dayKey, label: "daily"},
		{count: p.Weekly, key: weekKey, label: "weekly"},
		{count: p.Monthly, key: monthKey, label: "monthly"},
		{count: p.Yearly, key: yearKey, label: "yearly"},
	}
	var within []*bucket
	for _, b := range []*bucket{
		{within: p.WithinHourly, key: hourKey, label: "hourly"},
		{within: p.WithinDaily, key: dayKey, label: "daily"},
		{within: p.WithinWeekly, key: weekKey, label: "weekly"},
		{within: p.WithinMonthly, key: monthKey, label: "monthly"},
		{within: p.WithinYearly, key: yearKey, label: "yearly"},
	} {
		if !b.within.IsZero() {
			b.cutoff = b.within.Before(latest)
			within = append(within, b)
		}
	}
	for _, e := range p.Every {
		within = append(within, &bucket{within: e.Within, cutoff: e.Within.Before(latest), key: everyKey(e.width()), label: "every " + e.Width.String()})
	}
	var withinCut, maxCut time.Time
	if !p.Within.IsZero() {
		withinCut = p.Within.Before(latest)
	}
	if !p.MaxAge.IsZero() {
		maxCut = p.MaxAge.Before(local(o.Now))
	}
	lastLeft := p.Last

	for i := range g.Decisions {
		d := &g.Decisions[i]
		t := local(d.Snapshot.Time)
		var why []string
		if lastLeft != 0 {
			why = append(why, "last")
			if lastLeft > 0 {
				lastLeft--
			}
		}
		for _, b := range counted {
			if b.count == 0 {
				continue
			}
			k, label := b.key(t)
			if b.seen && k == b.last {
				continue
			}
			b.seen, b.last = true, k
			if b.count > 0 {
				b.count--
			}
			why = append(why, b.label+" "+label)
		}
		if !withinCut.IsZero() && t.After(withinCut) {
			why = append(why, "within "+p.Within.String())
		}
		for _, b := range within {
			if !t.After(b.cutoff) {
				continue
			}
			k, label := b.key(t)
			if b.seen && k == b.last {
				continue
			}
			b.seen, b.last = true, k
			why = append(why, b.label+" "+label+" within "+b.within.String())
		}
		for _, l := range p.Tags {
			if l.matches(d.Snapshot.Tags) {
				why = append(why, "tag "+l.String())
			}
		}
		if !maxCut.IsZero() && !t.After(maxCut) {
			d.Keep = false
			d.Reasons = []string{"older than " + p.MaxAge.String()}
			continue
		}
		d.Keep = len(why) > 0
		d.Reasons = why
	}
}

// FormatReasons joins reasons for a table cell.
func FormatReasons(r []string) string { return strings.Join(r, ", ") }
