package retention

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Duration
		err  string
	}{
		{in: "30d", want: Duration{Days: 30}},
		{in: "2w", want: Duration{Weeks: 2}},
		{in: "1y2m3d4h", want: Duration{Years: 1, Months: 2, Days: 3, Hours: 4}},
		{in: "4h1y", want: Duration{Years: 1, Hours: 4}},
		{in: "0d", want: Duration{}},
		{in: "48h", want: Duration{Hours: 48}},
		{in: "1y1w", want: Duration{Years: 1, Weeks: 1}},
		{in: "", err: "empty duration"},
		{in: "5", err: "has no unit"},
		{in: "5x", err: `unknown unit "x"`},
		{in: "5s", err: `unknown unit "s"`},
		{in: "-5d", err: "negative count -5"},
		{in: "d", err: "expected a number"},
		{in: "3d2d", err: "unit d given twice"},
		{in: "1d-", err: "no unit"},
		{in: "99999999999999999999d", err: "invalid number"},
		{in: "2000000d", err: "too large"},
		{in: "1d 2h", err: "expected a number"},
		{in: "+3d", err: "invalid number"},
	} {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	for in, want := range map[string]string{"4h1y": "1y4h", "30d": "30d", "0d": "0h", "1y2m3w4d5h": "1y2m3w4d5h"} {
		if got := MustParseDuration(in).String(); got != want {
			t.Errorf("%q: String() = %q, want %q", in, got, want)
		}
	}
}

func TestDurationBefore(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	// 1d across the spring-forward change is 23 hours; 24h is 24 hours.
	at := time.Date(2026, 3, 29, 12, 0, 0, 0, berlin)
	if got, want := MustParseDuration("1d").Before(at), time.Date(2026, 3, 28, 12, 0, 0, 0, berlin); !got.Equal(want) {
		t.Errorf("1d before %v = %v, want %v", at, got, want)
	}
	if got := at.Sub(MustParseDuration("1d").Before(at)); got != 23*time.Hour {
		t.Errorf("1d across DST = %v, want 23h", got)
	}
	if got := at.Sub(MustParseDuration("24h").Before(at)); got != 24*time.Hour {
		t.Errorf("24h = %v", got)
	}
	// Months normalise like time.AddDate.
	if got, want := MustParseDuration("1m").Before(time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)), time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("1m before 31 March = %v, want %v", got, want)
	}
	if got, want := MustParseDuration("1y2m3d4h").After(time.Date(2025, 12, 31, 22, 0, 0, 0, time.UTC)), time.Date(2027, 3, 7, 2, 0, 0, 0, time.UTC); !got.Equal(want) { // 31 Dec + 2m = "31 Feb" = 3 Mar, as time.AddDate normalises
		t.Errorf("After = %v, want %v", got, want)
	}
	if got, want := MustParseDuration("1y2w").Before(time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)), time.Date(2024, 12, 27, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("1y2w = %v, want %v", got, want)
	}
}

func TestDurationFixed(t *testing.T) {
	if d, err := MustParseDuration("1w2d3h").Fixed(); err != nil || d != (9*24+3)*time.Hour {
		t.Errorf("Fixed = %v, %v", d, err)
	}
	if _, err := MustParseDuration("1m").Fixed(); err == nil {
		t.Error("Fixed of 1m: no error")
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1y3d")); err != nil || d != (Duration{Years: 1, Days: 3}) {
		t.Fatalf("UnmarshalText = %+v, %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1y3d" {
		t.Errorf("MarshalText = %s", b)
	}
	if err := d.UnmarshalText([]byte("3q")); err == nil {
		t.Error("UnmarshalText(3q): no error")
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "2w", "1y2m3d4h", "48h", "0d", "-1d", "5x", "", "1d1d", "999999999999999999999y", "1y-2m", "+4h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		for _, n := range []int{d.Years, d.Months, d.Weeks, d.Days, d.Hours} {
			if n < 0 || n > maxCount {
				t.Fatalf("ParseDuration(%q) = %+v: count out of range", s, d)
			}
		}
		// The canonical form parses back to the same duration.
		d2, err := ParseDuration(d.String())
		if err != nil || d2 != d {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, d.String(), d2, err)
		}
		_ = d.Before(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	})
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load location %s: %v", name, err)
	}
	return loc
}
