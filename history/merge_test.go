package history

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	a, b := NewID(), NewID()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
}

func TestAppendStampsIDAndHost(t *testing.T) {
	ctx := context.Background()
	l := Open(filepath.Join(t.TempDir(), "history.jsonl"))
	l.Host = "web1"
	given := rec(KindCheck, "", t0, time.Second, StatusSuccess)
	given.ID, given.Host = "fixed", "elsewhere"
	if err := l.Append(ctx, rec(KindBackup, "", t0, time.Second, StatusSuccess)); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, given); err != nil {
		t.Fatal(err)
	}
	res, err := l.ReadAll(ctx)
	if err != nil || len(res.Records) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if got := res.Records[0]; len(got.ID) != 32 || got.Host != "web1" {
		t.Errorf("stamped record: id %q host %q", got.ID, got.Host)
	}
	if got := res.Records[1]; got.ID != "fixed" || got.Host != "elsewhere" {
		t.Errorf("given id and host changed: %q %q", got.ID, got.Host)
	}
}

func TestMerge(t *testing.T) {
	mk := func(id, host string, at time.Duration) Record {
		r := rec(KindBackup, "", t0.Add(at), time.Second, StatusSuccess)
		r.ID, r.Host = id, host
		return r
	}
	repoRecs := []Record{mk("b", "web2", 2*time.Hour), mk("a", "web1", time.Hour)}
	// The local file holds "a" too, and records older than ids.
	local := []Record{mk("a", "", time.Hour), mk("", "", 3*time.Hour), mk("", "", 3*time.Hour), mk("c", "web1", 0)}
	// A compaction cut short left "b" in two repository files.
	got := Merge(repoRecs, []Record{mk("b", "web2", 2*time.Hour)}, local)
	var ids, hosts []string
	for _, r := range got {
		ids = append(ids, r.ID)
		hosts = append(hosts, r.Host)
	}
	if want := []string{"c", "a", "b", "", ""}; !equal(ids, want) {
		t.Errorf("ids %q, want %q", ids, want)
	}
	// The first source wins: "a" keeps the repository's host.
	if want := []string{"web1", "web1", "web2", "", ""}; !equal(hosts, want) {
		t.Errorf("hosts %q, want %q", hosts, want)
	}
	if len(Merge()) != 0 {
		t.Error("merge of nothing")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseRecords(t *testing.T) {
	good, _ := FormatRecord(rec(KindDrill, "j", t0, time.Second, StatusSuccess))
	// A newer bunker's record with a field this one does not know.
	newer := json.RawMessage(`{"id":"x1","kind":"prune","start":"2026-11-20T02:00:00Z","status":"success","freed":123}`)
	res := ParseRecords([]json.RawMessage{good, json.RawMessage(`{"kind":"bogus"}`), newer, json.RawMessage(`[1]`)})
	if len(res.Records) != 2 || res.Bad != 2 || res.FirstBad == "" || res.Records[1].ID != "x1" {
		t.Fatalf("%+v", res)
	}
}
