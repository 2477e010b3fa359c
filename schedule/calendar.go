package schedule

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Calendar is a parsed systemd calendar event (systemd.time(7)):
// "[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]".
// Components are lists of values, ranges (A..B) and repetitions (A/R).
// Weekdays and the date must both match.
type Calendar struct {
	weekdays uint8 // bit per time.Weekday; 0 = any
	year     component
	month    component
	day      component
	fromEnd  bool // day counts from the end of the month ("~")
	hour     component
	minute   component
	second   component
	loc      *time.Location
	zone     string // zone name as written, "" = local
}

// item is one element of a component list: start..end with step rep.
// end == start and rep == 0 is a single value.
type item struct {
	any        bool
	start, end int
	rep        int
	hasEnd     bool
}

type component []item // empty = any

func (c component) matches(v int) bool {
	if len(c) == 0 {
		return true
	}
	for _, it := range c {
		if it.matches(v) {
			return true
		}
	}
	return false
}

// matchesFromEnd matches v counted from the month's end: a repetition
// steps towards the end ("~07/1" is the 7th-last day through the last).
func (c component) matchesFromEnd(v int) bool {
	if len(c) == 0 {
		return true
	}
	for _, it := range c {
		if it.rep > 0 && !it.hasEnd && !it.any {
			if v <= it.start && (it.start-v)%it.rep == 0 {
				return true
			}
			continue
		}
		if it.matches(v) {
			return true
		}
	}
	return false
}

func (it item) matches(v int) bool {
	if it.any {
		if it.rep > 0 {
			return v >= it.start && (v-it.start)%it.rep == 0
		}
		return true
	}
	end := it.start
	if it.hasEnd {
		end = it.end
	} else if it.rep > 0 {
		end = 1 << 30
	}
	if v < it.start || v > end {
		return false
	}
	if it.rep > 0 {
		return (v-it.start)%it.rep == 0
	}
	return true
}

// values expands a component over [lo, hi].
func (c component) values(lo, hi int) []int {
	var out []int
	for v := lo; v <= hi; v++ {
		if c.matches(v) {
			out = append(out, v)
		}
	}
	return out
}

func (c component) format(width int) string {
	if len(c) == 0 {
		return "*"
	}
	parts := make([]string, len(c))
	for i, it := range c {
		var b strings.Builder
		if it.any {
			b.WriteString("*")
			if it.rep > 0 && it.start != 0 {
				b.Reset()
				b.WriteString(pad(it.start, width))
			}
		} else {
			b.WriteString(pad(it.start, width))
			if it.hasEnd {
				b.WriteString("..")
				b.WriteString(pad(it.end, width))
			}
		}
		if it.rep > 0 {
			b.WriteString("/")
			b.WriteString(strconv.Itoa(it.rep))
		}
		parts[i] = b.String()
	}
	return strings.Join(parts, ",")
}

func pad(v, width int) string {
	s := strconv.Itoa(v)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

var shortWeekday = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

var calendarShorthands = map[string]string{
	"minutely":     "*-*-* *:*:00",
	"hourly":       "*-*-* *:00:00",
	"daily":        "*-*-* 00:00:00",
	"weekly":       "Mon *-*-* 00:00:00",
	"monthly":      "*-*-01 00:00:00",
	"yearly":       "*-01-01 00:00:00",
	"annually":     "*-01-01 00:00:00",
	"quarterly":    "*-01,04,07,10-01 00:00:00",
	"semiannually": "*-01,07-01 00:00:00",
}

// ParseCalendar parses a systemd calendar expression. It accepts the subset
// bunker can compute next elapses for: weekday lists and ranges, dates with
// lists, ranges, repetitions and "~" (days from the month's end), times with
// whole seconds, the shorthands (daily, weekly, ...) and a trailing time zone.
func ParseCalendar(expr string) (*Calendar, error) {
	fields := strings.Fields(expr)
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty calendar expression")
	}
	c := &Calendar{loc: time.Local}
	// A trailing time zone.
	if len(fields) > 1 || !strings.ContainsAny(fields[0], "-:*") {
		last := fields[len(fields)-1]
		if isZoneName(last) {
			loc, err := loadZone(last)
			if err != nil {
				return nil, err
			}
			c.loc, c.zone = loc, last
			fields = fields[:len(fields)-1]
		}
	}
	if len(fields) == 1 {
		if sh, ok := calendarShorthands[strings.ToLower(fields[0])]; ok {
			fields = strings.Fields(sh)
		}
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("calendar expression %q has no date or time", expr)
	}
	i := 0
	if !strings.ContainsAny(fields[0], "-:*~0123456789") {
		wd, err := parseWeekdays(fields[0])
		if err != nil {
			return nil, err
		}
		c.weekdays = wd
		i++
	}
	haveDate, haveTime := false, false
	for ; i < len(fields); i++ {
		f := fields[i]
		switch {
		case !haveDate && !haveTime && (strings.Contains(f, "-") || strings.Contains(f, "~")) && !strings.Contains(f, ":"):
			if err := c.parseDate(f); err != nil {
				return nil, err
			}
			haveDate = true
		case !haveTime && strings.Contains(f, ":"):
			if err := c.parseTime(f); err != nil {
				return nil, err
			}
			haveTime = true
		default:
			return nil, fmt.Errorf("calendar expression %q: unexpected %q", expr, f)
		}
	}
	if !haveTime {
		c.hour = component{{start: 0}}
		c.minute = component{{start: 0}}
		c.second = component{{start: 0}}
	}
	if c.weekdays == 0 && !haveDate && !haveTime {
		return nil, fmt.Errorf("calendar expression %q has no date or time", expr)
	}
	return c, nil
}

func isZoneName(s string) bool {
	if s == "UTC" || s == "utc" {
		return true
	}
	if !strings.Contains(s, "/") || strings.ContainsAny(s, ":*~,.") {
		return false
	}
	return s[0] >= 'A' && s[0] <= 'Z'
}

func loadZone(name string) (*time.Location, error) {
	if name == "utc" {
		name = "UTC"
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

func parseWeekdays(s string) (uint8, error) {
	var mask uint8
	for _, part := range strings.Split(strings.ToLower(s), ",") {
		lo, hi, isRange := strings.Cut(part, "..")
		if !isRange {
			lo, hi, isRange = strings.Cut(part, "-")
		}
		a, ok := weekdayNames[lo]
		if !ok {
			return 0, fmt.Errorf("unknown weekday %q", lo)
		}
		if !isRange {
			mask |= 1 << a
			continue
		}
		b, ok := weekdayNames[hi]
		if !ok {
			return 0, fmt.Errorf("unknown weekday %q", hi)
		}
		// Ranges run Monday-first, as in systemd.
		ai, bi := (int(a)+6)%7, (int(b)+6)%7
		if bi < ai {
			return 0, fmt.Errorf("weekday range %q runs backwards", part)
		}
		for d := ai; d <= bi; d++ {
			mask |= 1 << ((d + 1) % 7)
		}
	}
	return mask, nil
}

func (c *Calendar) parseDate(s string) error {
	var parts []string
	sepTilde := false
	if j := strings.LastIndex(s, "~"); j >= 0 {
		sepTilde = true
		parts = append(strings.Split(s[:j], "-"), s[j+1:])
	} else {
		parts = strings.Split(s, "-")
	}
	var err error
	switch len(parts) {
	case 2:
		c.year = nil
		if c.month, err = parseComponent(parts[0], 1, 12, "month"); err != nil {
			return err
		}
		if c.day, err = parseComponent(parts[1], 1, 31, "day"); err != nil {
			return err
		}
	case 3:
		if c.year, err = parseComponent(parts[0], 1970, 2199, "year"); err != nil {
			return err
		}
		if c.month, err = parseComponent(parts[1], 1, 12, "month"); err != nil {
			return err
		}
		if c.day, err = parseComponent(parts[2], 1, 31, "day"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("invalid date %q", s)
	}
	c.fromEnd = sepTilde
	return nil
}

func (c *Calendar) parseTime(s string) error {
	parts := strings.Split(s, ":")
	var err error
	switch len(parts) {
	case 2, 3:
	default:
		return fmt.Errorf("invalid time %q", s)
	}
	if c.hour, err = parseComponent(parts[0], 0, 23, "hour"); err != nil {
		return err
	}
	if c.minute, err = parseComponent(parts[1], 0, 59, "minute"); err != nil {
		return err
	}
	c.second = component{{start: 0}}
	if len(parts) == 3 {
		if c.second, err = parseComponent(parts[2], 0, 59, "second"); err != nil {
			return err
		}
	}
	return nil
}

func parseComponent(s string, lo, hi int, what string) (component, error) {
	if s == "" {
		return nil, fmt.Errorf("empty %s", what)
	}
	if s == "*" {
		return nil, nil
	}
	var c component
	for _, part := range strings.Split(s, ",") {
		var it item
		base, rep, hasRep := strings.Cut(part, "/")
		if hasRep {
			r, err := strconv.Atoi(rep)
			if err != nil || r <= 0 || r > hi {
				return nil, fmt.Errorf("invalid %s repetition %q", what, part)
			}
			it.rep = r
		}
		if base == "*" {
			it.any = true
			it.start = lo
			if what == "day" || what == "month" {
				it.start = 1
			}
			c = append(c, it)
			continue
		}
		a, b, isRange := strings.Cut(base, "..")
		v, err := parseNumber(a, lo, hi, what)
		if err != nil {
			return nil, err
		}
		it.start = v
		if isRange {
			w, err := parseNumber(b, lo, hi, what)
			if err != nil {
				return nil, err
			}
			if w < v {
				return nil, fmt.Errorf("%s range %q runs backwards", what, base)
			}
			it.end, it.hasEnd = w, true
		}
		c = append(c, it)
	}
	return c, nil
}

func parseNumber(s string, lo, hi int, what string) (int, error) {
	if s == "" || len(s) > 4 {
		return 0, fmt.Errorf("invalid %s %q", what, s)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("invalid %s %q", what, s)
		}
	}
	v, _ := strconv.Atoi(s)
	if v < lo || v > hi {
		return 0, fmt.Errorf("%s %d out of range %d..%d", what, v, lo, hi)
	}
	return v, nil
}

// Location is the zone the expression is evaluated in.
func (c *Calendar) Location() *time.Location { return c.loc }

// String renders the normalized form, as systemd-analyze prints it.
func (c *Calendar) String() string {
	var parts []string
	if c.weekdays != 0 {
		parts = append(parts, formatWeekdays(c.weekdays))
	}
	sep := "-"
	if c.fromEnd {
		sep = "~"
	}
	parts = append(parts, c.year.format(4)+"-"+c.month.format(2)+sep+c.day.format(2))
	parts = append(parts, c.hour.format(2)+":"+c.minute.format(2)+":"+c.second.format(2))
	if c.zone != "" {
		parts = append(parts, c.zone)
	}
	return strings.Join(parts, " ")
}

func formatWeekdays(mask uint8) string {
	// Monday-first runs, written as ranges when three or more.
	var out []string
	order := []int{1, 2, 3, 4, 5, 6, 0}
	for i := 0; i < 7; {
		if mask&(1<<order[i]) == 0 {
			i++
			continue
		}
		j := i
		for j+1 < 7 && mask&(1<<order[j+1]) != 0 {
			j++
		}
		switch {
		case j-i >= 2:
			out = append(out, shortWeekday[order[i]]+".."+shortWeekday[order[j]])
		case j-i == 1:
			out = append(out, shortWeekday[order[i]], shortWeekday[order[j]])
		default:
			out = append(out, shortWeekday[order[i]])
		}
		i = j + 1
	}
	return strings.Join(out, ",")
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func (c *Calendar) matchDay(y int, m time.Month, d int, wd time.Weekday) bool {
	if c.weekdays != 0 && c.weekdays&(1<<wd) == 0 {
		return false
	}
	if !c.year.matches(y) || !c.month.matches(int(m)) {
		return false
	}
	if c.fromEnd {
		return c.day.matchesFromEnd(daysIn(y, m) - d + 1)
	}
	return c.day.matches(d)
}

// maxYear bounds the search: calendar years are limited to 2199 as in systemd.
const maxYear = 2199

// Next returns the first elapse strictly after t, or the zero time when the
// expression never elapses again. Wall-clock times that do not exist (inside
// a daylight-saving gap) are skipped, as systemd does.
func (c *Calendar) Next(after time.Time) time.Time {
	loc := c.loc
	if loc == nil {
		loc = time.Local
	}
	t := after.In(loc)
	hours := c.hour.values(0, 23)
	minutes := c.minute.values(0, 59)
	seconds := c.second.values(0, 59)
	if len(hours) == 0 || len(minutes) == 0 || len(seconds) == 0 {
		return time.Time{}
	}
	if maxY, ok := c.year.max(); ok && maxY < t.Year() {
		return time.Time{}
	}
	day := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, time.UTC)
	// 29 years repeat the calendar including leap days and weekdays, bounded
	// by the year range.
	for n := 0; n < 366*29; n++ {
		y, m, d := day.Date()
		if y > maxYear {
			break
		}
		if c.matchDay(y, m, d, day.Weekday()) {
			first := n == 0
			for _, h := range hours {
				if first && h < t.Hour() {
					continue
				}
				for _, mi := range minutes {
					if first && h == t.Hour() && mi < t.Minute() {
						continue
					}
					for _, s := range seconds {
						cand, ok := wallTime(y, m, d, h, mi, s, loc)
						if ok && cand.After(after) {
							return cand
						}
					}
				}
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}
}

// wallTime is the earliest instant showing the given wall-clock time in
// loc, as systemd picks it: a time that occurs twice (when clocks go back)
// counts once, at its first occurrence; a time inside a gap (clocks go
// forward) does not exist.
func wallTime(y int, m time.Month, d, h, mi, s int, loc *time.Location) (time.Time, bool) {
	t := time.Date(y, m, d, h, mi, s, 0, loc)
	same := func(u time.Time) bool {
		uy, um, ud := u.Date()
		return uy == y && um == m && ud == d && u.Hour() == h && u.Minute() == mi && u.Second() == s
	}
	if !same(t) {
		return t, false
	}
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		if e := t.Add(-back); same(e.In(loc)) {
			return e, true
		}
	}
	return t, true
}

func (c component) max() (int, bool) {
	if len(c) == 0 {
		return 0, false
	}
	m := 0
	for _, it := range c {
		if it.any || (it.rep > 0 && !it.hasEnd) {
			return 0, false
		}
		v := it.start
		if it.hasEnd {
			v = it.end
		}
		if v > m {
			m = v
		}
	}
	return m, true
}

// sortedWeekdays lists the weekdays of a mask, Monday first.
func sortedWeekdays(mask uint8) []time.Weekday {
	var out []time.Weekday
	for d := 0; d < 7; d++ {
		if mask&(1<<d) != 0 {
			out = append(out, time.Weekday(d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return (int(out[i])+6)%7 < (int(out[j])+6)%7 })
	return out
}
