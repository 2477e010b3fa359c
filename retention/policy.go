package retention

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Unlimited as a bucket count keeps one snapshot in every bucket
// (restic's --keep-daily unlimited).
const Unlimited = -1

// Policy holds the keep rules of a retention policy. The zero Policy has no
// rules; Apply refuses it rather than removing everything.
type Policy struct {
	// Last keeps the N newest snapshots; Hourly ... Yearly keep the newest
	// snapshot of each of the N newest hours, days, ISO weeks, months and
	// years that hold a snapshot. 0 is off, Unlimited is every bucket.
	Last, Hourly, Daily, Weekly, Monthly, Yearly int

	// Within keeps every snapshot less than Within older than the newest
	// snapshot of its group.
	Within Duration
	// WithinHourly ... WithinYearly keep the newest snapshot of each hour
	// ... year, within that duration of the group's newest snapshot.
	WithinHourly, WithinDaily, WithinWeekly, WithinMonthly, WithinYearly Duration
	// Every keeps one snapshot per fixed-width slice of wall-clock time
	// within a duration (an extension of restic's flags: "48h:4h" is one per
	// 4 hours within 48 hours).
	Every []Every

	// Tags keeps snapshots carrying every tag of at least one list.
	Tags []TagList

	// MaxAge, when set, removes snapshots older than MaxAge before now even
	// when a keep rule matches them (the guarantees still apply).
	MaxAge Duration
}

// Every is a keep-within-every rule: within Within of the group's newest
// snapshot, keep the newest snapshot of each Width-wide slice of local
// wall-clock time. Slices are aligned to the Unix epoch in wall-clock time,
// so widths that divide a day start at local midnight.
type Every struct {
	Within Duration
	Width  Duration
}

// ParseEvery parses "WITHIN:WIDTH" such as "48h:4h". WIDTH must have a fixed
// length (weeks, days, hours) and must not be zero.
func ParseEvery(s string) (Every, error) {
	w, width, ok := strings.Cut(s, ":")
	if !ok {
		return Every{}, fmt.Errorf("parse keep-within-every %q: want WITHIN:WIDTH such as 48h:4h", s)
	}
	within, err := ParseDuration(w)
	if err != nil {
		return Every{}, fmt.Errorf("parse keep-within-every %q: %w", s, err)
	}
	wd, err := ParseDuration(width)
	if err != nil {
		return Every{}, fmt.Errorf("parse keep-within-every %q: %w", s, err)
	}
	e := Every{Within: within, Width: wd}
	if err := e.validate(); err != nil {
		return Every{}, fmt.Errorf("parse keep-within-every %q: %w", s, err)
	}
	return e, nil
}

func (e Every) String() string { return e.Within.String() + ":" + e.Width.String() }

func (e Every) validate() error {
	w, err := e.Width.Fixed()
	if err != nil {
		return fmt.Errorf("width: %w", err)
	}
	if w <= 0 {
		return errors.New("width must be positive")
	}
	if e.Within.IsZero() {
		return errors.New("within must be positive")
	}
	return nil
}

func (e Every) width() time.Duration {
	w, _ := e.Width.Fixed()
	return w
}

// TagList is a set of tags that a snapshot must all carry.
type TagList []string

// ParseTagList parses "a,b" (both tags required).
func ParseTagList(s string) (TagList, error) {
	var l TagList
	for t := range strings.SplitSeq(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			return nil, fmt.Errorf("parse tag list %q: empty tag", s)
		}
		l = append(l, t)
	}
	return l, nil
}

func (l TagList) String() string { return strings.Join(l, ",") }

func (l TagList) matches(tags []string) bool {
	for _, want := range l {
		found := false
		for _, t := range tags {
			if t == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return len(l) > 0
}

// Empty reports whether p has no keep rule.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 &&
		p.Within.IsZero() && p.WithinHourly.IsZero() && p.WithinDaily.IsZero() && p.WithinWeekly.IsZero() &&
		p.WithinMonthly.IsZero() && p.WithinYearly.IsZero() && len(p.Every) == 0 && len(p.Tags) == 0
}

// Validate reports an impossible policy: negative counts (other than
// Unlimited), malformed keep-within-every rules, empty tag lists, or no keep
// rule at all.
func (p Policy) Validate() error {
	for _, c := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if c.n < Unlimited {
			return fmt.Errorf("invalid policy: keep-%s %d is negative", c.name, c.n)
		}
	}
	for _, d := range []Duration{p.Within, p.WithinHourly, p.WithinDaily, p.WithinWeekly, p.WithinMonthly, p.WithinYearly, p.MaxAge} {
		if d.Years < 0 || d.Months < 0 || d.Weeks < 0 || d.Days < 0 || d.Hours < 0 {
			return fmt.Errorf("invalid policy: negative duration %s", d)
		}
	}
	for _, e := range p.Every {
		if err := e.validate(); err != nil {
			return fmt.Errorf("invalid policy: keep-within-every %s: %w", e, err)
		}
	}
	for _, l := range p.Tags {
		if len(l) == 0 {
			return errors.New("invalid policy: empty keep-tag list")
		}
	}
	if p.Empty() {
		return errors.New("invalid policy: no keep rule given (a policy that keeps nothing would remove every snapshot)")
	}
	return nil
}

// String describes p's rules, for messages ("keep 7 daily, within 2d, tag monthly").
func (p Policy) String() string {
	var parts []string
	count := func(n int, what string) {
		switch {
		case n == Unlimited:
			parts = append(parts, "all "+what)
		case n > 0:
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	switch {
	case p.Last == Unlimited:
		parts = append(parts, "all")
	case p.Last > 0:
		parts = append(parts, fmt.Sprintf("last %d", p.Last))
	}
	count(p.Hourly, "hourly")
	count(p.Daily, "daily")
	count(p.Weekly, "weekly")
	count(p.Monthly, "monthly")
	count(p.Yearly, "yearly")
	within := func(d Duration, what string) {
		if !d.IsZero() {
			parts = append(parts, what+" "+d.String())
		}
	}
	within(p.Within, "within")
	within(p.WithinHourly, "hourly within")
	within(p.WithinDaily, "daily within")
	within(p.WithinWeekly, "weekly within")
	within(p.WithinMonthly, "monthly within")
	within(p.WithinYearly, "yearly within")
	for _, e := range p.Every {
		parts = append(parts, "every "+e.Width.String()+" within "+e.Within.String())
	}
	for _, l := range p.Tags {
		parts = append(parts, "tag "+l.String())
	}
	if !p.MaxAge.IsZero() {
		parts = append(parts, "nothing older than "+p.MaxAge.String())
	}
	if len(parts) == 0 {
		return "no rules"
	}
	return "keep " + strings.Join(parts, ", ")
}
