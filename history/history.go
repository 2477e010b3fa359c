// Package history keeps bunker's local run history: an append-only file of
// JSON lines, one [Record] per job run, backup, restore, forget, prune,
// check or drill, and the views built on it: queries, table/CSV/JSON
// output, a Prometheus textfile for node_exporter and the per-job status
// evaluation behind "bunker status".
//
// # File
//
// The file lives where the caller says ($XDG_STATE_HOME/bunker/history.jsonl
// for a user, /var/lib/bunker/history.jsonl for root). Appends open it with
// O_APPEND, take an exclusive flock and write each record as one line with
// one write, so concurrent bunker processes never interleave lines. A line
// cut short by a crash is terminated before the next append and skipped
// (and counted) when reading.
//
// # Records in the repository
//
// The same records are also stored in the repository a run used (package
// repo, history/ files), so every host sees what ran against it. Each
// record carries a random [Record.ID] and the [Record.Host] it ran on; a
// record can be read twice (from the local file and the repository, or
// from two repository files after an interrupted compaction), and [Merge]
// keeps one per id.
//
// Everything except [Log] and [NewID] is a pure function: the current time
// is passed in.
package history

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Kind is what was run.
type Kind string

// The kinds of record.
const (
	KindJob     Kind = "job"
	KindBackup  Kind = "backup"
	KindRestore Kind = "restore"
	KindForget  Kind = "forget"
	KindPrune   Kind = "prune"
	KindCheck   Kind = "check"
	KindDrill   Kind = "drill"
)

// Kinds lists every kind.
var Kinds = []Kind{KindJob, KindBackup, KindRestore, KindForget, KindPrune, KindCheck, KindDrill}

// Status is how a run ended.
type Status string

// The run outcomes.
const (
	StatusSuccess Status = "success"
	// StatusPartial: a snapshot was written but some sources could not be read.
	StatusPartial Status = "partial"
	StatusFailed  Status = "failed"
	// StatusSkipped: the run did not start (another run held the job's lock,
	// or the job is disabled).
	StatusSkipped Status = "skipped"
)

// Statuses lists every status.
var Statuses = []Status{StatusSuccess, StatusPartial, StatusFailed, StatusSkipped}

// Record is one run.
type Record struct {
	// ID is random and unique to the record (NewID): the same record read
	// from two places is shown once. Records written before ids existed
	// have none.
	ID string
	// Host is the host the run ran on ("" in records that predate it).
	Host   string
	Kind   Kind
	Job    string // "" for runs outside a job
	Target string // repository, snapshot or path the run acted on
	Start  time.Time
	End    time.Time
	// Duration is End-Start unless set otherwise (a drill reports the
	// restore time alone).
	Duration time.Duration
	Status   Status
	// Bytes is the amount of new data added (backup) or bytes restored.
	Bytes    int64
	Snapshot string // snapshot id written or read
	// Snapshots is the job's snapshot count after the run, when known (0 = unknown).
	Snapshots int
	Error     string
}

// Elapsed is Duration, or End-Start when Duration is not set.
func (r Record) Elapsed() time.Duration {
	if r.Duration == 0 && !r.End.IsZero() {
		return r.End.Sub(r.Start)
	}
	return r.Duration
}

// recordJSON is the line format. Field names are stable.
type recordJSON struct {
	ID        string   `json:"id,omitempty"`
	Host      string   `json:"host,omitempty"`
	Kind      Kind     `json:"kind"`
	Job       string   `json:"job,omitempty"`
	Target    string   `json:"target,omitempty"`
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Duration  *float64 `json:"duration"`
	Status    Status   `json:"status"`
	Bytes     int64    `json:"bytes"`
	Snapshot  string   `json:"snapshot,omitempty"`
	Snapshots int      `json:"snapshots,omitempty"`
	Error     string   `json:"error,omitempty"`
}

func validKind(k Kind) bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

func validStatus(s Status) bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// NewID returns a new random record id: 128 bits as 32 hex digits.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("history: read random id: %v", err)) // crypto/rand never fails on supported systems
	}
	return hex.EncodeToString(b[:])
}

// maxDuration bounds the duration of a run (about 31 years).
const maxDuration = 1e9 * time.Second

// maxID and maxHost bound the id and host of a record.
const (
	maxID   = 128
	maxHost = 255
)

// maxLine bounds a history line; longer errors are shortened on append.
const maxLine = 64 << 10

// maxError is the longest error message kept in a record.
const maxError = 4 << 10

// Validate checks a record before it is written.
func (r Record) Validate() error {
	switch {
	case !validKind(r.Kind):
		return fmt.Errorf("invalid record kind %q", r.Kind)
	case !validStatus(r.Status):
		return fmt.Errorf("invalid record status %q", r.Status)
	case r.Start.IsZero():
		return errors.New("record has no start time")
	case !r.End.IsZero() && r.End.Before(r.Start):
		return errors.New("record ends before it starts")
	case r.Bytes < 0 || r.Snapshots < 0 || r.Duration < 0:
		return errors.New("record has a negative count")
	case r.Duration > maxDuration || !r.End.IsZero() && r.End.Sub(r.Start) > maxDuration:
		return errors.New("record duration out of range")
	case r.Start.Year() < 1 || r.Start.Year() > 9999 || r.End.Year() > 9999:
		return errors.New("record time out of range")
	case len(r.ID) > maxID || strings.ContainsFunc(r.ID, notPrintable):
		return errors.New("record has an invalid id")
	case len(r.Host) > maxHost || strings.ContainsFunc(r.Host, notPrintable):
		return errors.New("record has an invalid host")
	}
	return nil
}

func notPrintable(r rune) bool { return r < ' ' || r == 0x7f }

// MarshalJSON encodes the line format: times in RFC 3339 with nanoseconds,
// the duration in seconds.
func (r Record) MarshalJSON() ([]byte, error) {
	d := r.Duration
	if d == 0 && !r.End.IsZero() {
		d = r.End.Sub(r.Start)
	}
	secs := math.Round(d.Seconds()*1000) / 1000
	j := recordJSON{
		ID: r.ID, Host: r.Host, Kind: r.Kind, Job: r.Job, Target: r.Target,
		Start: r.Start.Format(time.RFC3339Nano), Duration: &secs,
		Status: r.Status, Bytes: r.Bytes, Snapshot: r.Snapshot,
		Snapshots: r.Snapshots, Error: r.Error,
	}
	if !r.End.IsZero() {
		j.End = r.End.Format(time.RFC3339Nano)
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the line format and validates it.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	return r.fromJSON(&j)
}

func (r *Record) fromJSON(j *recordJSON) error {
	var out Record
	var err error
	out.ID, out.Host = j.ID, j.Host
	out.Kind, out.Job, out.Target, out.Status = j.Kind, j.Job, j.Target, j.Status
	out.Bytes, out.Snapshot, out.Snapshots, out.Error = j.Bytes, j.Snapshot, j.Snapshots, j.Error
	if out.Start, err = time.Parse(time.RFC3339Nano, j.Start); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if j.End != "" {
		if out.End, err = time.Parse(time.RFC3339Nano, j.End); err != nil {
			return fmt.Errorf("end: %w", err)
		}
	}
	if j.Duration != nil {
		if math.IsNaN(*j.Duration) || *j.Duration < 0 || *j.Duration > maxDuration.Seconds() {
			return fmt.Errorf("duration %v out of range", *j.Duration)
		}
		out.Duration = time.Duration(*j.Duration * float64(time.Second))
	} else if !out.End.IsZero() {
		out.Duration = out.End.Sub(out.Start)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*r = out
	return nil
}

// ParseLine decodes one history line.
func ParseLine(line []byte) (Record, error) {
	var r Record
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return r, errors.New("empty line")
	}
	if len(line) > maxLine {
		return r, errors.New("line too long")
	}
	var j recordJSON
	if err := json.Unmarshal(line, &j); err != nil {
		return Record{}, fmt.Errorf("parse history record: %w", err)
	}
	if err := r.fromJSON(&j); err != nil {
		return Record{}, fmt.Errorf("parse history record: %w", err)
	}
	return r, nil
}

// FormatLine encodes a record as one line including the newline. Long
// errors are shortened so a line stays bounded.
func FormatLine(r Record) ([]byte, error) {
	b, err := FormatRecord(r)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// FormatRecord encodes a record as the JSON object of its line, without
// the newline: the form stored in the repository.
func FormatRecord(r Record) ([]byte, error) {
	if r.Duration == 0 && !r.End.IsZero() {
		r.Duration = r.End.Sub(r.Start)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if len(r.Error) > maxError {
		r.Error = strings.ToValidUTF8(r.Error[:maxError], "") + "..."
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) >= maxLine {
		return nil, errors.New("history record too long")
	}
	return b, nil
}

// Query selects records.
type Query struct {
	Since time.Time // records starting at or after (zero = all)
	Until time.Time // records starting before (zero = all)
	Job   string    // "" = every job
	Kinds []Kind    // nil = every kind
	Limit int       // 0 = no limit; applied after sorting, newest first
}

// Filter returns the records matching q, newest first (by start; equal
// starts keep later-appended records first).
func Filter(recs []Record, q Query) []Record {
	var out []Record
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if !q.Since.IsZero() && r.Start.Before(q.Since) {
			continue
		}
		if !q.Until.IsZero() && !r.Start.Before(q.Until) {
			continue
		}
		if q.Job != "" && r.Job != q.Job {
			continue
		}
		if q.Kinds != nil {
			ok := false
			for _, k := range q.Kinds {
				ok = ok || k == r.Kind
			}
			if !ok {
				continue
			}
		}
		out = append(out, r)
	}
	// out is in reverse append order; the stable sort keeps later appends
	// first among equal starts.
	sortNewestFirst(out)
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

func sortNewestFirst(recs []Record) {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Start.After(recs[j].Start) })
}

// ParseSince parses a --since value: a duration back from now ("7d", "36h",
// "2w"), a date ("2026-11-01") or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty --since value")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, now.Location()); err == nil {
		return t, nil
	}
	d, err := ParseAge(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q is not a duration (7d, 36h), date (2026-11-01) or RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

// ParseAge parses a duration with the extra units d (day) and w (week):
// "26h", "7d", "2w", "1d12h".
func ParseAge(s string) (time.Duration, error) {
	orig := s
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 || i >= len(s) {
			break
		}
		unit := s[i]
		if unit != 'd' && unit != 'w' {
			break
		}
		n := time.Duration(0)
		fmt.Sscan(s[:i], &n)
		if unit == 'd' {
			total += n * 24 * time.Hour
		} else {
			total += n * 7 * 24 * time.Hour
		}
		s = s[i+1:]
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", orig)
	}
	return total, nil
}
