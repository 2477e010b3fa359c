package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones must resolve on hosts without zoneinfo
)

// Kind is the form of a schedule.
type Kind int

// The schedule forms.
const (
	Once       Kind = iota + 1 // once 2026-12-01 01:00
	Hourly                     // hourly
	Daily                      // daily 02:00
	Weekly                     // weekly mon,thu 03:00
	Monthly                    // monthly 1 04:00
	MonthlyNth                 // monthly third-mon 04:00
	Every                      // every 6h, every 15m
	Raw                        // a systemd OnCalendar expression
)

var kindNames = map[Kind]string{
	Once: "once", Hourly: "hourly", Daily: "daily", Weekly: "weekly",
	Monthly: "monthly", MonthlyNth: "monthly", Every: "every", Raw: "calendar",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Last is the Nth value of "monthly last-mon".
const Last = -1

// Schedule is a parsed schedule line. The zero value is not a valid schedule;
// use [Parse].
type Schedule struct {
	Kind Kind

	// Date is the day of a Once schedule (year, month and day are used).
	Date time.Time
	// Hour and Minute are the time of day (Once, Daily, Weekly, Monthly, MonthlyNth).
	Hour, Minute int
	// Weekdays are the days of a Weekly schedule, Monday first.
	Weekdays []time.Weekday
	// Day is the day of the month of a Monthly schedule (1..31; months
	// without that day are skipped, as in systemd).
	Day int
	// Nth and Weekday select a MonthlyNth day: Nth is 1..4 or Last.
	Nth     int
	Weekday time.Weekday
	// Interval is the period of an Every schedule: whole minutes dividing an
	// hour or whole hours dividing a day, counted from midnight.
	Interval time.Duration
	// Expr is the OnCalendar expression of a Raw schedule, as written.
	Expr string

	// Window spreads the start over this duration (RandomizedDelaySec).
	Window time.Duration
	// Zone is the time zone name ("" = the host's local zone).
	Zone string

	cal *Calendar
}

// ParseError reports a schedule line that does not parse.
type ParseError struct {
	Input string
	Msg   string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid schedule %q: %s", e.Input, e.Msg)
}

var ordinals = map[string]int{
	"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3,
	"fourth": 4, "4th": 4, "last": Last,
}

var ordinalNames = map[int]string{1: "first", 2: "second", 3: "third", 4: "fourth", Last: "last"}

// maxWindow bounds the start window: longer windows defeat the schedule.
const maxWindow = 7 * 24 * time.Hour

// Parse parses a schedule line (see the package documentation).
func Parse(line string) (Schedule, error) {
	fail := func(format string, args ...any) (Schedule, error) {
		return Schedule{}, &ParseError{Input: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(line) > 512 {
		return fail("longer than 512 bytes")
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" {
		return fail("empty schedule")
	}
	var s Schedule
	if rest, ok := cutPrefixFold(trimmed, "OnCalendar="); ok {
		return parseRaw(line, rest)
	}
	words := strings.Fields(trimmed)
	kw := strings.ToLower(words[0])
	if kw == "calendar" {
		return parseRaw(line, strings.TrimSpace(trimmed[len(words[0]):]))
	}
	// Options come after the form; split them off first.
	words, opts, err := splitOptions(words)
	if err != nil {
		return fail("%v", err)
	}
	args := words[1:]
	needArgs := func(min, max int, usage string) error {
		if len(args) < min || len(args) > max {
			return fmt.Errorf("expected %q", usage)
		}
		return nil
	}
	timeArg := func(i int) error {
		if i >= len(args) {
			return nil // midnight
		}
		h, m, err := parseClock(args[i])
		if err != nil {
			return err
		}
		s.Hour, s.Minute = h, m
		return nil
	}
	switch kw {
	case "once":
		s.Kind = Once
		if err := needArgs(1, 2, "once YYYY-MM-DD [HH:MM]"); err != nil {
			return fail("%v", err)
		}
		d, err := time.Parse("2006-01-02", args[0])
		if err != nil {
			return fail("date %q is not YYYY-MM-DD", args[0])
		}
		if d.Year() < 1970 || d.Year() > maxYear {
			return fail("year %d out of range 1970..%d", d.Year(), maxYear)
		}
		s.Date = d
		err = timeArg(1)
		if err != nil {
			return fail("%v", err)
		}
	case "hourly":
		s.Kind = Hourly
		if err := needArgs(0, 0, "hourly"); err != nil {
			return fail("%v", err)
		}
	case "daily":
		s.Kind = Daily
		if err := needArgs(0, 1, "daily [HH:MM]"); err != nil {
			return fail("%v", err)
		}
		if err := timeArg(0); err != nil {
			return fail("%v", err)
		}
	case "weekly":
		s.Kind = Weekly
		if err := needArgs(0, 2, "weekly DAY[,DAY...] [HH:MM]"); err != nil {
			return fail("%v", err)
		}
		mask := uint8(1 << time.Monday)
		if len(args) > 0 {
			if mask, err = parseWeekdays(args[0]); err != nil {
				return fail("%v", err)
			}
		}
		s.Weekdays = sortedWeekdays(mask)
		if err := timeArg(1); err != nil {
			return fail("%v", err)
		}
	case "monthly":
		s.Kind = Monthly
		if err := needArgs(0, 2, "monthly DAY|NTH-WEEKDAY [HH:MM]"); err != nil {
			return fail("%v", err)
		}
		s.Day = 1
		if len(args) > 0 {
			if ord, wd, ok := strings.Cut(strings.ToLower(args[0]), "-"); ok {
				n, ok1 := ordinals[ord]
				w, ok2 := weekdayNames[wd]
				if !ok1 {
					return fail("%q is not first, second, third, fourth or last", ord)
				}
				if !ok2 {
					return fail("unknown weekday %q", wd)
				}
				s.Kind, s.Day, s.Nth, s.Weekday = MonthlyNth, 0, n, w
			} else {
				d, err := parseNumber(args[0], 1, 31, "day of month")
				if err != nil {
					return fail("%v", err)
				}
				s.Day = d
			}
		}
		if err := timeArg(1); err != nil {
			return fail("%v", err)
		}
	case "every":
		s.Kind = Every
		if err := needArgs(1, 1, "every Nm|Nh"); err != nil {
			return fail("%v", err)
		}
		d, err := parseInterval(args[0])
		if err != nil {
			return fail("%v", err)
		}
		s.Interval = d
	default:
		// A bare systemd calendar expression.
		return parseRaw(line, trimmed)
	}
	s.Window, s.Zone = opts.window, opts.zone
	if p := s.period(); p > 0 && s.Window >= p {
		return fail("window %s is not shorter than the period %s: runs would overlap", formatDuration(s.Window), formatDuration(p))
	}
	cal, err := ParseCalendar(s.onCalendar())
	if err != nil {
		return fail("%v", err)
	}
	s.cal = cal
	return s, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return strings.TrimSpace(s[len(prefix):]), true
	}
	return s, false
}

type options struct {
	window time.Duration
	zone   string
}

// splitOptions removes "window D" and "tz ZONE" from the words.
func splitOptions(words []string) ([]string, options, error) {
	var o options
	var out []string
	seen := map[string]bool{}
	for i := 0; i < len(words); i++ {
		w := strings.ToLower(words[i])
		if i == 0 || (w != "window" && w != "tz") {
			out = append(out, words[i])
			continue
		}
		if seen[w] {
			return nil, o, fmt.Errorf("%q given twice", w)
		}
		seen[w] = true
		if i+1 >= len(words) {
			return nil, o, fmt.Errorf("%q needs a value", w)
		}
		v := words[i+1]
		i++
		switch w {
		case "window":
			d, err := parseDuration(v)
			if err != nil {
				return nil, o, fmt.Errorf("window: %v", err)
			}
			if d <= 0 || d > maxWindow {
				return nil, o, fmt.Errorf("window %s out of range (1s..7d)", v)
			}
			if d%time.Second != 0 {
				return nil, o, fmt.Errorf("window %s is not whole seconds", v)
			}
			o.window = d
		case "tz":
			if _, err := loadZone(v); err != nil {
				return nil, o, err
			}
			o.zone = v
		}
	}
	return out, o, nil
}

// parseRaw handles a systemd calendar expression with optional bunker options.
func parseRaw(line, expr string) (Schedule, error) {
	words := strings.Fields(expr)
	if len(words) == 0 {
		return Schedule{}, &ParseError{Input: line, Msg: "empty calendar expression"}
	}
	// Options may trail the expression; "window" and "tz" are not calendar syntax.
	words, opts, err := splitOptions(append([]string{""}, words...))
	if err != nil {
		return Schedule{}, &ParseError{Input: line, Msg: err.Error()}
	}
	words = words[1:]
	if len(words) == 0 {
		return Schedule{}, &ParseError{Input: line, Msg: "empty calendar expression"}
	}
	e := strings.Join(words, " ")
	if opts.zone != "" {
		e += " " + opts.zone
	}
	cal, err := ParseCalendar(e)
	if err != nil {
		return Schedule{}, &ParseError{Input: line, Msg: err.Error()}
	}
	if opts.zone != "" && cal.zone != opts.zone {
		return Schedule{}, &ParseError{Input: line, Msg: "two time zones"}
	}
	return Schedule{Kind: Raw, Expr: e, Window: opts.window, Zone: cal.zone, cal: cal}, nil
}

// parseClock parses HH:MM.
func parseClock(s string) (int, int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 {
		return 0, 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	hh, err1 := parseNumber(h, 0, 23, "hour")
	mm, err2 := parseNumber(m, 0, 59, "minute")
	if err1 != nil {
		return 0, 0, err1
	}
	if err2 != nil {
		return 0, 0, err2
	}
	return hh, mm, nil
}

// parseDuration accepts Go durations plus a "d" (day) unit: 1h, 90m, 2d, 1h30m.
func parseDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

func parseInterval(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("interval %q is not Nm or Nh", s)
	}
	unit := s[len(s)-1]
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("interval %q is not Nm or Nh", s)
	}
	switch unit {
	case 'm':
		if n >= 60 || 60%n != 0 {
			if n%60 == 0 {
				return parseInterval(strconv.Itoa(n/60) + "h")
			}
			return 0, fmt.Errorf("interval %q must divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 minutes)", s)
		}
		return time.Duration(n) * time.Minute, nil
	case 'h':
		if n > 24 || 24%n != 0 {
			return 0, fmt.Errorf("interval %q must divide a day (1, 2, 3, 4, 6, 8, 12 or 24 hours)", s)
		}
		return time.Duration(n) * time.Hour, nil
	}
	return 0, fmt.Errorf("interval %q is not Nm or Nh", s)
}

// period is the fixed time between runs of a regular schedule (0 when
// irregular or single).
func (s Schedule) period() time.Duration {
	switch s.Kind {
	case Hourly:
		return time.Hour
	case Every:
		return s.Interval
	case Daily:
		return 24 * time.Hour
	}
	return 0
}

// MustParse is Parse for schedules known to be valid; it panics otherwise.
func MustParse(line string) Schedule {
	s, err := Parse(line)
	if err != nil {
		panic(err)
	}
	return s
}

func clock(h, m int) string { return fmt.Sprintf("%02d:%02d", h, m) }

// String renders the schedule in canonical grammar; Parse(s.String())
// yields an equal schedule.
func (s Schedule) String() string {
	var b strings.Builder
	switch s.Kind {
	case Once:
		b.WriteString("once " + s.Date.Format("2006-01-02") + " " + clock(s.Hour, s.Minute))
	case Hourly:
		b.WriteString("hourly")
	case Daily:
		b.WriteString("daily " + clock(s.Hour, s.Minute))
	case Weekly:
		names := make([]string, len(s.Weekdays))
		for i, d := range s.Weekdays {
			names[i] = strings.ToLower(shortWeekday[d])
		}
		b.WriteString("weekly " + strings.Join(names, ",") + " " + clock(s.Hour, s.Minute))
	case Monthly:
		fmt.Fprintf(&b, "monthly %d %s", s.Day, clock(s.Hour, s.Minute))
	case MonthlyNth:
		fmt.Fprintf(&b, "monthly %s-%s %s", ordinalNames[s.Nth], strings.ToLower(shortWeekday[s.Weekday]), clock(s.Hour, s.Minute))
	case Every:
		if s.Interval%time.Hour == 0 {
			fmt.Fprintf(&b, "every %dh", s.Interval/time.Hour)
		} else {
			fmt.Fprintf(&b, "every %dm", s.Interval/time.Minute)
		}
	case Raw:
		b.WriteString("OnCalendar=" + s.Expr)
		if s.Window > 0 {
			b.WriteString(" window " + formatDuration(s.Window))
		}
		return b.String()
	default:
		return ""
	}
	if s.Window > 0 {
		b.WriteString(" window " + formatDuration(s.Window))
	}
	if s.Zone != "" {
		b.WriteString(" tz " + s.Zone)
	}
	return b.String()
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m := d % time.Hour / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s := d % time.Minute / time.Second; s > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// OnCalendar is the systemd OnCalendar= value of the schedule.
func (s Schedule) OnCalendar() string {
	if s.Kind == Raw {
		return s.Expr
	}
	return s.onCalendar()
}

func (s Schedule) onCalendar() string {
	t := clock(s.Hour, s.Minute) + ":00"
	var e string
	switch s.Kind {
	case Once:
		e = s.Date.Format("2006-01-02") + " " + t
	case Hourly:
		e = "*-*-* *:00:00"
	case Daily:
		e = "*-*-* " + t
	case Weekly:
		var mask uint8
		for _, d := range s.Weekdays {
			mask |= 1 << d
		}
		e = formatWeekdays(mask) + " *-*-* " + t
	case Monthly:
		e = fmt.Sprintf("*-*-%02d %s", s.Day, t)
	case MonthlyNth:
		wd := shortWeekday[s.Weekday]
		if s.Nth == Last {
			e = wd + " *-*~07/1 " + t
		} else {
			lo := 7*(s.Nth-1) + 1
			e = fmt.Sprintf("%s *-*-%02d..%02d %s", wd, lo, lo+6, t)
		}
	case Every:
		if s.Interval >= time.Hour {
			e = fmt.Sprintf("*-*-* 00/%d:00:00", s.Interval/time.Hour)
			if s.Interval == time.Hour {
				e = "*-*-* *:00:00"
			}
			if s.Interval == 24*time.Hour {
				e = "*-*-* 00:00:00"
			}
		} else {
			e = fmt.Sprintf("*-*-* *:00/%d:00", s.Interval/time.Minute)
		}
	}
	if s.Zone != "" {
		e += " " + s.Zone
	}
	return e
}

// Calendar is the compiled calendar event of the schedule.
func (s Schedule) Calendar() *Calendar { return s.cal }

// Next is the first start strictly after the given time (ignoring the
// window), or the zero time when the schedule has no further run.
func (s Schedule) Next(after time.Time) time.Time {
	if s.cal == nil {
		return time.Time{}
	}
	return s.cal.Next(after)
}

// Equal reports whether two schedules have the same meaning and options.
func (s Schedule) Equal(o Schedule) bool {
	return s.String() == o.String()
}

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (s Schedule) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with [Parse].
func (s *Schedule) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
