package history

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// Expect is what the caller knows about a configured job.
type Expect struct {
	Job     string
	Enabled bool
	// MaxAge is how old the last good run may be (0 = not monitored).
	MaxAge time.Duration
	// Next is the job's next scheduled start (zero = none or unknown).
	Next time.Time
}

// JobStatus is the evaluated state of one job.
type JobStatus struct {
	Job     string
	Enabled bool
	// LastRun is the newest non-skipped run; HasRun says whether there is one.
	LastRun Record
	HasRun  bool
	// LastGood is the newest successful run; HasGood says whether there is one.
	LastGood Record
	HasGood  bool
	// Age is now minus the end of the last good run.
	Age    time.Duration
	MaxAge time.Duration
	Next   time.Time
	// Overdue: an enabled, monitored job without a good run within MaxAge.
	Overdue bool
}

// runKind is the record kind that stands for a job's runs: job records
// when there are any (a run's outcome includes its hooks and retention),
// else backup records made for the job.
func runKind(recs []Record, job string) Kind {
	for _, r := range recs {
		if r.Job == job && r.Kind == KindJob {
			return KindJob
		}
	}
	return KindBackup
}

// Evaluate computes each expected job's status from the records (in any
// order). A job's runs are its job records (its backup records when it has
// none); it is good when its last successful run ended within MaxAge of now. Jobs in the records but not
// expected are ignored; the result follows the order of jobs.
func Evaluate(recs []Record, jobs []Expect, now time.Time) []JobStatus {
	out := make([]JobStatus, 0, len(jobs))
	for _, e := range jobs {
		st := JobStatus{Job: e.Job, Enabled: e.Enabled, MaxAge: e.MaxAge, Next: e.Next}
		kind := runKind(recs, e.Job)
		for _, r := range recs {
			if r.Job != e.Job || r.Kind != kind || r.Status == StatusSkipped {
				continue
			}
			if !st.HasRun || r.Start.After(st.LastRun.Start) {
				st.LastRun, st.HasRun = r, true
			}
			if r.Status == StatusSuccess && (!st.HasGood || endOf(r).After(endOf(st.LastGood))) {
				st.LastGood, st.HasGood = r, true
			}
		}
		if st.HasGood {
			st.Age = now.Sub(endOf(st.LastGood))
			if st.Age < 0 {
				st.Age = 0
			}
		}
		st.Overdue = e.Enabled && e.MaxAge > 0 && (!st.HasGood || st.Age > e.MaxAge)
		out = append(out, st)
	}
	return out
}

func endOf(r Record) time.Time {
	if !r.End.IsZero() {
		return r.End
	}
	return r.Start.Add(r.Duration)
}

// AnyOverdue reports whether a status needs attention (for the exit code).
func AnyOverdue(sts []JobStatus) bool {
	for _, s := range sts {
		if s.Overdue {
			return true
		}
	}
	return false
}

// WriteStatusTable renders statuses for people.
func WriteStatusTable(w io.Writer, sts []JobStatus, loc *time.Location) error {
	if loc == nil {
		loc = time.Local
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "JOB\tSTATE\tLAST RUN\tRESULT\tLAST GOOD\tAGE\tMAX AGE\tNEXT RUN")
	for _, s := range sts {
		state := "ok"
		switch {
		case !s.Enabled:
			state = "disabled"
		case s.Overdue:
			state = "OVERDUE"
		case s.MaxAge == 0:
			state = "unmonitored"
		}
		lastRun, result, lastGood, age, maxAge, next := "never", "-", "never", "-", "-", "-"
		if s.HasRun {
			lastRun = s.LastRun.Start.In(loc).Format("2006-01-02 15:04")
			result = string(s.LastRun.Status)
		}
		if s.HasGood {
			lastGood = endOf(s.LastGood).In(loc).Format("2006-01-02 15:04")
			age = FormatAge(s.Age)
		}
		if s.MaxAge > 0 {
			maxAge = FormatAge(s.MaxAge)
		}
		if !s.Next.IsZero() {
			next = s.Next.In(loc).Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Job, state, lastRun, result, lastGood, age, maxAge, next)
	}
	return tw.Flush()
}

// FormatAge renders an age coarsely: "45m", "5h10m", "3d4h".
func FormatAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d < 48*time.Hour:
		if m := d % time.Hour / time.Minute; m != 0 {
			return fmt.Sprintf("%dh%dm", d/time.Hour, m)
		}
		return fmt.Sprintf("%dh", d/time.Hour)
	default:
		days := d / (24 * time.Hour)
		h := d % (24 * time.Hour) / time.Hour
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

// statusJSON is the --json form of a job status.
type statusJSON struct {
	Job        string   `json:"job"`
	Enabled    bool     `json:"enabled"`
	Overdue    bool     `json:"overdue"`
	LastRun    *Record  `json:"last_run,omitempty"`
	LastGood   *Record  `json:"last_good,omitempty"`
	AgeSeconds *float64 `json:"age_seconds,omitempty"`
	MaxAge     *float64 `json:"max_age_seconds,omitempty"`
	Next       string   `json:"next_run,omitempty"`
}

// WriteStatusJSON writes statuses as one JSON array.
func WriteStatusJSON(w io.Writer, sts []JobStatus) error {
	out := make([]statusJSON, 0, len(sts))
	for _, s := range sts {
		j := statusJSON{Job: s.Job, Enabled: s.Enabled, Overdue: s.Overdue}
		if s.HasRun {
			r := s.LastRun
			j.LastRun = &r
		}
		if s.HasGood {
			r := s.LastGood
			j.LastGood = &r
			a := s.Age.Seconds()
			j.AgeSeconds = &a
		}
		if s.MaxAge > 0 {
			m := s.MaxAge.Seconds()
			j.MaxAge = &m
		}
		if !s.Next.IsZero() {
			j.Next = s.Next.UTC().Format(time.RFC3339)
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// Jobs lists the job names that appear in the records, sorted.
func Jobs(recs []Record) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range recs {
		if r.Job != "" && !seen[r.Job] {
			seen[r.Job] = true
			out = append(out, r.Job)
		}
	}
	sort.Strings(out)
	return out
}
