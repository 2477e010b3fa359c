package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a calendar duration such as "1y2m3d4h": years, months, weeks,
// days and hours. Years, months and days are calendar units, so 1m before
// 31 March is 28 or 29 February's end (Go's time.AddDate normalises), and 1d
// across a daylight saving change is 23 or 25 hours.
type Duration struct {
	Years, Months, Weeks, Days, Hours int
}

// maxCount bounds each number of a Duration, far beyond any sensible
// retention period and far from integer overflow.
const maxCount = 1_000_000

// ParseDuration parses a duration: one or more of <number><unit>, with the
// units y (years), m (months), w (weeks), d (days) and h (hours), each at
// most once, for example "30d", "2w", "1y2m3d4h". "0d" is the zero duration.
func ParseDuration(s string) (Duration, error) {
	var d Duration
	if s == "" {
		return d, errors.New("parse duration: empty duration")
	}
	seen := map[byte]bool{}
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '-' || rest[i] == '+') {
			i++
		}
		num := rest[:i]
		if num == "" {
			return Duration{}, fmt.Errorf("parse duration %q: expected a number before %q", s, rest)
		}
		if i == len(rest) {
			return Duration{}, fmt.Errorf("parse duration %q: number %s has no unit (use y, m, w, d or h)", s, num)
		}
		unit := rest[i]
		rest = rest[i+1:]
		if strings.HasPrefix(num, "-") && strings.Trim(num[1:], "0123456789") == "" && len(num) > 1 {
			return Duration{}, fmt.Errorf("parse duration %q: negative count %s", s, num)
		}
		if strings.Trim(num, "0123456789") != "" {
			return Duration{}, fmt.Errorf("parse duration %q: invalid number %q", s, num)
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return Duration{}, fmt.Errorf("parse duration %q: invalid number %q", s, num)
		}
		if n > maxCount {
			return Duration{}, fmt.Errorf("parse duration %q: %d is too large", s, n)
		}
		if seen[unit] {
			return Duration{}, fmt.Errorf("parse duration %q: unit %c given twice", s, unit)
		}
		seen[unit] = true
		switch unit {
		case 'y':
			d.Years = n
		case 'm':
			d.Months = n
		case 'w':
			d.Weeks = n
		case 'd':
			d.Days = n
		case 'h':
			d.Hours = n
		default:
			return Duration{}, fmt.Errorf("parse duration %q: unknown unit %q (use y, m, w, d or h)", s, string(unit))
		}
	}
	return d, nil
}

// MustParseDuration is ParseDuration for constants in code and tests; it
// panics on an invalid duration.
func MustParseDuration(s string) Duration {
	d, err := ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// String formats d in the form ParseDuration accepts ("1y2m3d4h"); the zero
// duration is "0h".
func (d Duration) String() string {
	var b strings.Builder
	for _, p := range []struct {
		n    int
		unit byte
	}{{d.Years, 'y'}, {d.Months, 'm'}, {d.Weeks, 'w'}, {d.Days, 'd'}, {d.Hours, 'h'}} {
		if p.n != 0 {
			b.WriteString(strconv.Itoa(p.n))
			b.WriteByte(p.unit)
		}
	}
	if b.Len() == 0 {
		return "0h"
	}
	return b.String()
}

// IsZero reports whether d is zero (the rule it configures is off).
func (d Duration) IsZero() bool { return d == Duration{} }

// Before returns the time d before t, in t's location.
func (d Duration) Before(t time.Time) time.Time {
	return t.AddDate(-d.Years, -d.Months, -(7*d.Weeks + d.Days)).Add(-time.Duration(d.Hours) * time.Hour)
}

// After returns the time d after t, in t's location.
func (d Duration) After(t time.Time) time.Time {
	return t.AddDate(d.Years, d.Months, 7*d.Weeks+d.Days).Add(time.Duration(d.Hours) * time.Hour)
}

// Fixed returns d as a fixed length of time. It fails when d has years or
// months, whose length depends on the calendar. A day is 24 hours.
func (d Duration) Fixed() (time.Duration, error) {
	if d.Years != 0 || d.Months != 0 {
		return 0, fmt.Errorf("duration %s has years or months, which have no fixed length", d)
	}
	return time.Duration(7*d.Weeks+d.Days)*24*time.Hour + time.Duration(d.Hours)*time.Hour, nil
}

// MarshalText encodes d as its String form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses d with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
