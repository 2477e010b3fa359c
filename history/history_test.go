package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)

func rec(kind Kind, job string, start time.Time, d time.Duration, st Status) Record {
	return Record{Kind: kind, Job: job, Target: "/srv/repo", Start: start, End: start.Add(d), Status: st}
}

func TestLineRoundTrip(t *testing.T) {
	r := Record{Kind: KindBackup, Job: "nightly", Target: "/srv/repo", Start: t0, End: t0.Add(90*time.Second + 250*time.Millisecond),
		Status: StatusPartial, Bytes: 12345, Snapshot: "0123456789abcdef", Snapshots: 7, Error: "read /x: permission denied"}
	line, err := FormatLine(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"backup","job":"nightly","target":"/srv/repo","start":"2026-11-20T02:00:00Z","end":"2026-11-20T02:01:30.25Z","duration":90.25,"status":"partial","bytes":12345,"snapshot":"0123456789abcdef","snapshots":7,"error":"read /x: permission denied"}` + "\n"
	if string(line) != want {
		t.Errorf("line\n%s\nwant\n%s", line, want)
	}
	got, err := ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	r.Duration = 90250 * time.Millisecond
	if !got.Start.Equal(r.Start) || !got.End.Equal(r.End) || got.Duration != r.Duration ||
		got.Kind != r.Kind || got.Status != r.Status || got.Bytes != r.Bytes || got.Error != r.Error || got.Snapshots != 7 {
		t.Errorf("round trip: %+v", got)
	}
	for _, bad := range []string{
		``, `{}`, `nonsense`, `{"kind":"nope","start":"2026-11-20T02:00:00Z","status":"success"}`,
		`{"kind":"job","start":"2026-11-20T02:00:00Z","status":"meh"}`,
		`{"kind":"job","status":"success"}`,
		`{"kind":"job","start":"2026-11-20T02:00:00Z","end":"2026-11-19T02:00:00Z","status":"success"}`,
		`{"kind":"job","start":"2026-11-20T02:00:00Z","status":"success","bytes":-1}`,
		`{"kind":"job","start":"2026-11-20T02:00:00Z","status":"success","duration":-5}`,
	} {
		if _, err := ParseLine([]byte(bad)); err == nil {
			t.Errorf("ParseLine(%q) accepted", bad)
		}
	}
	if _, err := FormatLine(Record{Kind: KindJob, Status: StatusSuccess}); err == nil {
		t.Error("record without start accepted")
	}
	long := rec(KindJob, "j", t0, time.Second, StatusFailed)
	long.Error = strings.Repeat("é", 10000)
	line, err = FormatLine(long)
	if err != nil || len(line) > 5000 {
		t.Errorf("long error: %d bytes, %v", len(line), err)
	}
	if _, err := ParseLine(line); err != nil {
		t.Errorf("shortened line does not parse: %v", err)
	}
}

func TestAppendRead(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "history.jsonl")
	l := Open(path)
	if res, err := l.ReadAll(ctx); err != nil || len(res.Records) != 0 {
		t.Fatalf("missing file: %+v %v", res, err)
	}
	for i := 0; i < 3; i++ {
		if err := l.Append(ctx, rec(KindJob, "a", t0.Add(time.Duration(i)*time.Hour), time.Minute, StatusSuccess)); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	// A crash cut the last line short.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"kind":"job","jo`)
	f.Close()
	if err := l.Append(ctx, rec(KindBackup, "b", t0.Add(5*time.Hour), time.Minute, StatusFailed)); err != nil {
		t.Fatal(err)
	}
	res, err := l.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 4 || res.Bad != 1 || !strings.HasPrefix(res.FirstBad, "line 4:") {
		t.Errorf("read %d records, %d bad (%s)", len(res.Records), res.Bad, res.FirstBad)
	}
	got, _, err := l.Query(ctx, Query{Since: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Job != "b" || !got[2].Start.Equal(t0.Add(time.Hour)) {
		t.Errorf("query: %+v", got)
	}
	if err := l.Append(ctx, Record{Kind: "bogus"}); err == nil {
		t.Error("invalid record appended")
	}
}

// TestConcurrentAppend appends from many goroutines, each with its own file
// description (as separate processes would), and checks every line is whole.
func TestConcurrentAppend(t *testing.T) {
	ctx := context.Background()
	l := Open(filepath.Join(t.TempDir(), "h.jsonl"))
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := rec(KindBackup, fmt.Sprintf("job%d", w), t0.Add(time.Duration(i)*time.Second), time.Second, StatusSuccess)
				r.Error = strings.Repeat("x", 3000) // lines larger than a pipe buffer
				if err := l.Append(ctx, r); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	res, err := l.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != writers*each || res.Bad != 0 {
		t.Errorf("%d records, %d bad", len(res.Records), res.Bad)
	}
}

func TestFilter(t *testing.T) {
	recs := []Record{
		rec(KindJob, "a", t0, time.Minute, StatusSuccess),
		rec(KindBackup, "a", t0, time.Minute, StatusSuccess), // same start, appended later
		rec(KindJob, "b", t0.Add(time.Hour), time.Minute, StatusFailed),
		rec(KindRestore, "", t0.Add(-time.Hour), time.Minute, StatusSuccess), // out of order
		rec(KindJob, "a", t0.Add(2*time.Hour), time.Minute, StatusSkipped),
	}
	got := Filter(recs, Query{})
	order := []string{"job a skipped", "job b failed", "backup a success", "job a success", "restore  success"}
	for i, r := range got {
		if s := fmt.Sprintf("%s %s %s", r.Kind, r.Job, r.Status); s != order[i] {
			t.Errorf("#%d = %s, want %s", i, s, order[i])
		}
	}
	if got := Filter(recs, Query{Job: "a", Kinds: []Kind{KindJob}}); len(got) != 2 {
		t.Errorf("job filter: %d", len(got))
	}
	if got := Filter(recs, Query{Since: t0, Until: t0.Add(time.Hour)}); len(got) != 2 {
		t.Errorf("since/until: %d", len(got))
	}
	if got := Filter(recs, Query{Limit: 1}); len(got) != 1 || got[0].Status != StatusSkipped {
		t.Errorf("limit: %+v", got)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"36h":                  now.Add(-36 * time.Hour),
		"2w":                   now.Add(-14 * 24 * time.Hour),
		"1d12h":                now.Add(-36 * time.Hour),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10:00:00Z": time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "7", "d", "-1d", "yesterday", "0h", "7x"} {
		if _, err := ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) accepted", bad)
		}
	}
}

func sample() []Record {
	a := rec(KindBackup, "nightly", t0, 95*time.Second, StatusSuccess)
	a.Bytes, a.Snapshot, a.Snapshots = 3<<20, "a1b2c3d4e5f6a7b8", 12
	a.ID, a.Host = "5f0c9d2e8b7a61430f1e2d3c4b5a6978", "web1"
	b := rec(KindJob, "nightly", t0.Add(24*time.Hour), 3*time.Second, StatusFailed)
	b.Error = "open repository /srv/repo: permission denied\nhint: run as root"
	c := rec(KindJob, "disks", t0.Add(-time.Hour), 2*time.Hour, StatusPartial)
	c.Target = "disk, \"vm1\""
	return []Record{a, b, c}
}

func TestRender(t *testing.T) {
	recs := Filter(sample(), Query{})
	var b bytes.Buffer
	if err := WriteTable(&b, recs, time.UTC); err != nil {
		t.Fatal(err)
	}
	wantTable := `START                KIND    JOB      STATUS   DURATION  BYTES    SNAPSHOT  TARGET       ERROR
2026-11-21 02:00:00  job     nightly  failed   3s        -        -         /srv/repo    open repository /srv/repo: permission denied
2026-11-20 02:00:00  backup  nightly  success  1m35s     3.0 MiB  a1b2c3d4  /srv/repo
2026-11-20 01:00:00  job     disks    partial  2h00m     -        -         disk, "vm1"
`
	if b.String() != wantTable {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), wantTable)
	}
	b.Reset()
	if err := WriteCSV(&b, recs); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := WriteHostTable(&b, recs, time.UTC); err != nil {
		t.Fatal(err)
	}
	wantHostTable := `START                HOST  KIND    JOB      STATUS   DURATION  BYTES    SNAPSHOT  TARGET       ERROR
2026-11-21 02:00:00  -     job     nightly  failed   3s        -        -         /srv/repo    open repository /srv/repo: permission denied
2026-11-20 02:00:00  web1  backup  nightly  success  1m35s     3.0 MiB  a1b2c3d4  /srv/repo
2026-11-20 01:00:00  -     job     disks    partial  2h00m     -        -         disk, "vm1"
`
	if b.String() != wantHostTable {
		t.Errorf("host table:\n%s\nwant:\n%s", b.String(), wantHostTable)
	}
	b.Reset()
	if err := WriteCSV(&b, recs); err != nil {
		t.Fatal(err)
	}
	wantCSV := `kind,job,target,start,end,duration_seconds,status,bytes,snapshot,snapshots,error,host,id
job,nightly,/srv/repo,2026-11-21T02:00:00Z,2026-11-21T02:00:03Z,3.000,failed,0,,0,"open repository /srv/repo: permission denied
hint: run as root",,
backup,nightly,/srv/repo,2026-11-20T02:00:00Z,2026-11-20T02:01:35Z,95.000,success,3145728,a1b2c3d4e5f6a7b8,12,,web1,5f0c9d2e8b7a61430f1e2d3c4b5a6978
job,disks,"disk, ""vm1""",2026-11-20T01:00:00Z,2026-11-20T03:00:00Z,7200.000,partial,0,,0,,,
`
	if b.String() != wantCSV {
		t.Errorf("csv:\n%s\nwant:\n%s", b.String(), wantCSV)
	}
	b.Reset()
	if err := WriteJSON(&b, recs); err != nil {
		t.Fatal(err)
	}
	var back []Record
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back) != 3 || back[1].Snapshot != "a1b2c3d4e5f6a7b8" ||
		back[1].ID != "5f0c9d2e8b7a61430f1e2d3c4b5a6978" || back[1].Host != "web1" || !strings.Contains(b.String(), `"id":"5f0c9d2e8b7a61430f1e2d3c4b5a6978","host":"web1","kind":"backup"`) {
		t.Errorf("json: %v %+v\n%s", err, back, b.String())
	}
	b.Reset()
	WriteJSON(&b, nil)
	if b.String() != "[]\n" {
		t.Errorf("empty json: %q", b.String())
	}
}

func TestEvaluateAndPrometheus(t *testing.T) {
	now := t0.Add(30 * time.Hour)
	recs := sample()
	// The job record of the run that made the backup (as job.Runner writes it).
	run := recs[0]
	run.Kind = KindJob
	recs = append(recs, run, rec(KindJob, "nightly", t0.Add(29*time.Hour), time.Second, StatusSkipped))
	// A job with backup records only (backups made outside the runner).
	bk := rec(KindBackup, "adhoc", t0.Add(29*time.Hour), time.Minute, StatusSuccess)
	recs = append(recs, bk)
	jobs := []Expect{
		{Job: "nightly", Enabled: true, MaxAge: 26 * time.Hour, Next: t0.Add(48 * time.Hour)},
		{Job: "disks", Enabled: true, MaxAge: 26 * time.Hour},
		{Job: "new", Enabled: true, MaxAge: 26 * time.Hour},
		{Job: "off", Enabled: false, MaxAge: time.Hour},
		{Job: "weekly", Enabled: true},
		{Job: "adhoc", Enabled: true, MaxAge: 2 * time.Hour},
	}
	sts := Evaluate(recs, jobs, now)
	n := sts[0]
	if !n.HasRun || n.LastRun.Status != StatusFailed || !n.HasGood || n.Age != 30*time.Hour-95*time.Second || !n.Overdue {
		t.Errorf("nightly: %+v", n)
	}
	if sts[1].HasGood || !sts[1].Overdue || sts[1].LastRun.Status != StatusPartial {
		t.Errorf("disks (partial only): %+v", sts[1])
	}
	if !sts[2].Overdue || sts[2].HasRun {
		t.Errorf("never run: %+v", sts[2])
	}
	if sts[3].Overdue || sts[4].Overdue {
		t.Error("disabled or unmonitored job overdue")
	}
	if a := sts[5]; !a.HasGood || a.Overdue || a.Age != 59*time.Minute {
		t.Errorf("adhoc: %+v", a)
	}
	if !AnyOverdue(sts) || AnyOverdue(sts[3:]) {
		t.Error("AnyOverdue")
	}
	ok := Evaluate(recs, []Expect{{Job: "nightly", Enabled: true, MaxAge: 31 * time.Hour}}, now)
	if ok[0].Overdue {
		t.Error("nightly within 31h overdue")
	}

	sts = sts[:5]
	var b bytes.Buffer
	if err := WriteStatusTable(&b, sts, time.UTC); err != nil {
		t.Fatal(err)
	}
	wantStatus := `JOB      STATE        LAST RUN          RESULT   LAST GOOD         AGE     MAX AGE  NEXT RUN
nightly  OVERDUE      2026-11-21 02:00  failed   2026-11-20 02:01  29h58m  26h      2026-11-22 02:00
disks    OVERDUE      2026-11-20 01:00  partial  never             -       26h      -
new      OVERDUE      never             -        never             -       26h      -
off      disabled     never             -        never             -       1h       -
weekly   unmonitored  never             -        never             -       -        -
`
	if b.String() != wantStatus {
		t.Errorf("status table:\n%s\nwant:\n%s", b.String(), wantStatus)
	}
	b.Reset()
	if err := WriteStatusJSON(&b, sts[:1]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"overdue":true`) || !strings.Contains(b.String(), `"age_seconds":107905`) ||
		!strings.Contains(b.String(), `"next_run":"2026-11-22T02:00:00Z"`) {
		t.Errorf("status json: %s", b.String())
	}

	sts[0].Job = `night"ly`
	prom := string(Prometheus(sts))
	wantProm := `# HELP bunker_job_last_success_timestamp_seconds Unix time the job's last successful run ended.
# TYPE bunker_job_last_success_timestamp_seconds gauge
bunker_job_last_success_timestamp_seconds{job="night\"ly"} 1.795140095e+09
# HELP bunker_job_last_run_timestamp_seconds Unix time the job's last run started.
# TYPE bunker_job_last_run_timestamp_seconds gauge
bunker_job_last_run_timestamp_seconds{job="night\"ly"} 1.7952264e+09
bunker_job_last_run_timestamp_seconds{job="disks"} 1.7951364e+09
# HELP bunker_job_last_run_success Whether the job's last run succeeded (1) or not (0).
# TYPE bunker_job_last_run_success gauge
bunker_job_last_run_success{job="night\"ly"} 0
bunker_job_last_run_success{job="disks"} 0
# HELP bunker_job_last_duration_seconds Duration of the job's last run.
# TYPE bunker_job_last_duration_seconds gauge
bunker_job_last_duration_seconds{job="night\"ly"} 3
bunker_job_last_duration_seconds{job="disks"} 7200
# HELP bunker_job_last_bytes_added Bytes of new data added by the job's last successful run.
# TYPE bunker_job_last_bytes_added gauge
bunker_job_last_bytes_added{job="night\"ly"} 3.145728e+06
# HELP bunker_job_snapshots Snapshots of the job in the repository after its last run.
# TYPE bunker_job_snapshots gauge
bunker_job_snapshots{job="night\"ly"} 12
# HELP bunker_job_overdue Whether the job's last good run is older than its maximum age.
# TYPE bunker_job_overdue gauge
bunker_job_overdue{job="night\"ly"} 1
bunker_job_overdue{job="disks"} 1
bunker_job_overdue{job="new"} 1
`
	if prom != wantProm {
		t.Errorf("prometheus:\n%s\nwant:\n%s", prom, wantProm)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bunker.prom")
	if err := WritePrometheus(path, sts); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != wantProm {
		t.Errorf("textfile: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	// The error names the file asked for, not the temporary file.
	missing := filepath.Join(dir, "missing", "x.prom")
	err = WritePrometheus(missing, sts)
	if want := "write prometheus file " + missing + ": no such file or directory"; err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write into a missing directory: %v, want %s", err, want)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, r := range sample() {
		line, _ := FormatLine(r)
		f.Add(line)
	}
	f.Add([]byte(`{"kind":"job","start":"2026-11-20T02:00:00Z","status":"success","duration":1e308}`))
	f.Add([]byte(`{"kind":"drill","start":"0001-01-01T00:00:00Z","end":"9999-12-31T23:59:59Z","status":"skipped"}`))
	f.Add([]byte("\xff\xfe{"))
	f.Add([]byte(`{"id":"00112233445566778899aabbccddeeff","host":"web1","kind":"check","start":"2026-11-20T02:00:00Z","status":"failed"}`))
	f.Add([]byte(`{"id":"a\u0000b","kind":"check","start":"2026-11-20T02:00:00Z","status":"failed"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseLine(line)
		if err != nil {
			return
		}
		// Whatever parses must format and parse back to the same record.
		out, err := FormatLine(r)
		if err != nil {
			t.Fatalf("parsed record does not format: %v (%+v)", err, r)
		}
		r2, err := ParseLine(out)
		if err != nil {
			t.Fatalf("formatted record does not parse: %v\n%s", err, out)
		}
		if r2.Kind != r.Kind || r2.Status != r.Status || !r2.Start.Equal(r.Start) || r2.Job != r.Job || r2.ID != r.ID || r2.Host != r.Host {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, r2)
		}
	})
}

func TestStateDir(t *testing.T) {
	for _, c := range []struct {
		euid      int
		xdg, home string
		want      string
	}{
		{0, "", "/root", "/var/lib/bunker/history.jsonl"},
		{0, "/x", "/root", "/x/bunker/history.jsonl"},
		{1000, "/home/a/state", "/home/a", "/home/a/state/bunker/history.jsonl"},
		{1000, "", "/home/a", "/home/a/.local/state/bunker/history.jsonl"},
		{1000, "relative", "/home/a", "/home/a/.local/state/bunker/history.jsonl"},
	} {
		if got := DefaultPath(c.euid, c.xdg, c.home); got != c.want {
			t.Errorf("DefaultPath(%d, %q, %q) = %q", c.euid, c.xdg, c.home, got)
		}
	}
}
