package schedule

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Cron has no portable way to run a line in another time zone: CRON_TZ=
// is cronie's, and Debian's cron ignores it without a word. A schedule
// with a zone therefore becomes a line that fires every hour at each
// system-clock minute the zone's times can fall on, and a guard that asks
// date(1) for the zone's clock at that instant:
//
//	s=$(date +%s) && [ "$(TZ=Europe/Berlin date -d @$s +%H:%M)" = 02:30 ] &&
//	[ "$(TZ=Europe/Berlin date -d @$((s-3600)) +%H:%M)" != "$(TZ=Europe/Berlin date -d @$s +%H:%M)" ]
//
// Every test reads the clock at the one instant s, so a guard cannot
// straddle a minute. A wall time the zone skips (clocks go forward) is
// never shown, so that run is skipped; a wall time the zone shows twice
// (clocks go back) runs only at its first occurrence, which the last test
// checks: an hour ago the clock did not show the same time. Both are what
// systemd does with "OnCalendar=... Europe/Berlin", so cron and timers
// start a zoned job at the same instants.

// zoneSpan bounds the years whose offsets and transitions are taken into
// account (the time zone database's rules are extended beyond its table).
var zoneSpan = [2]time.Time{
	time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
}

// clockBack is a transition that sets a zone's clock back: the wall times
// [from, to) (minutes of the day, to < from across midnight) occur twice,
// delta seconds apart.
type clockBack struct {
	delta    int
	from, to int
}

// coversAny reports whether any of the times (hours x minutes) is repeated.
func (b clockBack) coversAny(hours, minutes []int) bool {
	for _, h := range hours {
		for _, m := range minutes {
			t := h*60 + m
			if b.from <= b.to && t >= b.from && t < b.to || b.from > b.to && (t >= b.from || t < b.to) {
				return true
			}
		}
	}
	return false
}

// zoneClock is what a zone's clock does within zoneSpan.
type zoneClock struct {
	// fractions are the distinct minutes of the hour the zone's offsets
	// add to UTC (30 for +05:30 and for -03:30).
	fractions []int
	backs     []clockBack
}

func inspectZone(loc *time.Location) zoneClock {
	var zc zoneClock
	fractions := map[int]bool{}
	backs := map[clockBack]bool{}
	for t := zoneSpan[0]; t.Before(zoneSpan[1]); {
		lt := t.In(loc)
		_, off := lt.Zone()
		fractions[((off/60)%60+60)%60] = true
		_, end := lt.ZoneBounds()
		if end.IsZero() || !end.After(t) {
			break
		}
		if _, next := end.In(loc).Zone(); next < off {
			w := end.In(loc)
			from := w.Hour()*60 + w.Minute()
			backs[clockBack{delta: off - next, from: from, to: (from + (off-next)/60) % (24 * 60)}] = true
		}
		t = end
	}
	for f := range fractions {
		zc.fractions = append(zc.fractions, f)
	}
	sort.Ints(zc.fractions)
	for b := range backs {
		zc.backs = append(zc.backs, b)
	}
	sort.Slice(zc.backs, func(i, j int) bool {
		a, b := zc.backs[i], zc.backs[j]
		if a.delta != b.delta {
			return a.delta < b.delta
		}
		if a.from != b.from {
			return a.from < b.from
		}
		return a.to < b.to
	})
	return zc
}

// guardField is one part of the zone's clock a guard compares: a date(1)
// format and the values it must show.
type guardField struct {
	format string // %Y, %m, %d, %u, %H or %M
	values []int
	width  int
}

// zonedCron renders a schedule with a time zone for a cron that runs in
// the system zone sys: the five time fields and the shell guards.
func zonedCron(s Schedule, sys *time.Location) (string, []string, error) {
	c := s.cal
	if sec := c.second.values(0, 59); len(sec) != 1 || sec[0] != 0 {
		return "", nil, fmt.Errorf("cron cannot express seconds (%q)", s.OnCalendar())
	}
	lastWeek := s.Kind == MonthlyNth && s.Nth == Last
	if c.fromEnd && !lastWeek {
		return "", nil, fmt.Errorf("cron cannot express days counted from the month's end (%q)", s.OnCalendar())
	}
	var fields []guardField
	if len(c.year) > 0 {
		years := c.year.values(1970, maxYear)
		if len(years) != 1 {
			return "", nil, fmt.Errorf("cron cannot express years other than a single one (%q)", s.OnCalendar())
		}
		fields = append(fields, guardField{"%Y", years, 4})
	}
	add := func(format string, comp component, lo, hi, width int) {
		if v := comp.values(lo, hi); len(v) < hi-lo+1 {
			fields = append(fields, guardField{format, v, width})
		}
	}
	add("%m", c.month, 1, 12, 2)
	if !c.fromEnd {
		add("%d", c.day, 1, 31, 2)
	}
	if c.weekdays != 0 && c.weekdays != 0x7f {
		var ds []int
		for _, d := range sortedWeekdays(c.weekdays) {
			ds = append(ds, (int(d)+6)%7+1) // date +%u: Monday=1..Sunday=7
		}
		fields = append(fields, guardField{"%u", ds, 1})
	}
	hours, minutes := c.hour.values(0, 23), c.minute.values(0, 59)
	add("%H", c.hour, 0, 23, 2)
	add("%M", c.minute, 0, 59, 2)

	zone := shellQuote(s.Zone, false)
	clockAt := func(at, format string) string {
		return `"$(TZ=` + zone + ` date -d @` + at + ` +` + format + `)"`
	}
	var guards []string
	for _, g := range groupFields(fields) {
		format, alts := g.format(), g.alternatives()
		if len(alts) == 1 && !strings.ContainsAny(alts[0], "[*?") {
			guards = append(guards, "[ "+clockAt("$s", format)+" = "+alts[0]+" ]")
		} else {
			guards = append(guards, "case "+clockAt("$s", format)+" in "+strings.Join(alts, "|")+") true;; *) false;; esac")
		}
	}
	if lastWeek {
		// The last such weekday: a week later it is another month. The
		// offset lands at noon a week on, whatever the clocks do meanwhile.
		k := 7*24*3600 + (12*60-(s.Hour*60+s.Minute))*60
		guards = append(guards, "[ "+clockAt("$((s+"+strconv.Itoa(k)+"))", "%d")+" -le 7 ]")
	}
	// A time the zone's clock shows twice runs at its first occurrence
	// only: the clock did not show it one clock change earlier.
	zc := inspectZone(c.loc)
	var deltas []int
	for _, b := range zc.backs {
		if !slices.Contains(deltas, b.delta) && b.coversAny(hours, minutes) {
			deltas = append(deltas, b.delta)
		}
	}
	for _, d := range deltas {
		guards = append(guards, "[ "+clockAt("$((s-"+strconv.Itoa(d)+"))", "%H:%M")+" != "+clockAt("$s", "%H:%M")+" ]")
	}
	if len(guards) > 0 {
		guards = append([]string{"s=$(date +%s)"}, guards...)
	}

	// The minutes of the system clock: the zone's minute m shows as
	// m - zone fraction + system fraction.
	sysc := inspectZone(sys)
	at := map[int]bool{}
	for _, m := range minutes {
		for _, zf := range zc.fractions {
			for _, sf := range sysc.fractions {
				at[((m-zf+sf)%60+60)%60] = true
			}
		}
	}
	return minuteField(at) + " * * * *", guards, nil
}

// minuteField writes a set of minutes as a cron minute field.
func minuteField(set map[int]bool) string {
	var ms []int
	for m := range set {
		ms = append(ms, m)
	}
	sort.Ints(ms)
	if len(ms) == 60 {
		return "*"
	}
	if len(ms) > 2 {
		step := ms[1] - ms[0]
		regular := 60%step == 0 && len(ms) == 60/step
		for i := 1; i < len(ms) && regular; i++ {
			regular = ms[i]-ms[i-1] == step
		}
		if regular {
			if ms[0] == 0 {
				return "*/" + strconv.Itoa(step)
			}
			return strconv.Itoa(ms[0]) + "-59/" + strconv.Itoa(step)
		}
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = strconv.Itoa(m)
	}
	return strings.Join(parts, ",")
}

// maxAlternatives bounds the patterns of one guard; fields whose patterns
// multiply beyond it get a guard of their own.
const maxAlternatives = 12

type fieldGroup []guardField

// groupFields packs adjacent fields into guards while their patterns
// multiply to at most maxAlternatives.
func groupFields(fields []guardField) []fieldGroup {
	var out []fieldGroup
	var cur fieldGroup
	n := 1
	for _, f := range fields {
		k := len(f.patterns())
		if len(cur) > 0 && n*k > maxAlternatives {
			out = append(out, cur)
			cur, n = nil, 1
		}
		cur = append(cur, f)
		n *= k
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// separator joins two fields of a guard's format: 02:30, 1-02:30.
func separator(prev, next guardField) string {
	if prev.format == "%H" && next.format == "%M" {
		return ":"
	}
	return "-"
}

func (g fieldGroup) format() string {
	var b strings.Builder
	for i, f := range g {
		if i > 0 {
			b.WriteString(separator(g[i-1], f))
		}
		b.WriteString(f.format)
	}
	return b.String()
}

// alternatives are the case patterns of the group: the product of its
// fields' patterns.
func (g fieldGroup) alternatives() []string {
	alts := []string{""}
	for i, f := range g {
		sep := ""
		if i > 0 {
			sep = separator(g[i-1], f)
		}
		var next []string
		for _, a := range alts {
			for _, p := range f.patterns() {
				next = append(next, a+sep+p)
			}
		}
		alts = next
	}
	return alts
}

// patterns writes the field's values as shell patterns, folding three or
// more values that differ only in the last digit into a bracket: 1[5-9].
func (f guardField) patterns() []string {
	var out []string
	var prefixes []string
	digits := map[string][]int{}
	for _, v := range f.values {
		s := pad(v, f.width)
		p := s[:len(s)-1]
		if _, ok := digits[p]; !ok {
			prefixes = append(prefixes, p)
		}
		digits[p] = append(digits[p], int(s[len(s)-1]-'0'))
	}
	for _, p := range prefixes {
		ds := digits[p]
		if len(ds) < 3 {
			for _, d := range ds {
				out = append(out, p+strconv.Itoa(d))
			}
			continue
		}
		out = append(out, p+"["+digitClass(ds)+"]")
	}
	return out
}

// digitClass writes sorted digits as a bracket expression's body, runs of
// three or more as ranges: 1-5, 06, 0-35.
func digitClass(ds []int) string {
	var b strings.Builder
	for i := 0; i < len(ds); {
		j := i
		for j+1 < len(ds) && ds[j+1] == ds[j]+1 {
			j++
		}
		if j-i >= 2 {
			fmt.Fprintf(&b, "%d-%d", ds[i], ds[j])
		} else {
			for k := i; k <= j; k++ {
				b.WriteString(strconv.Itoa(ds[k]))
			}
		}
		i = j + 1
	}
	return b.String()
}
