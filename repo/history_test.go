package repo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func historyRecord(id string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"kind":"backup","start":"2026-11-20T02:00:00Z","status":"success"}`, id))
}

// allRecordIDs returns the record ids of every history file, sorted.
func allRecordIDs(t *testing.T, r *repo.Repository) []string {
	t.Helper()
	files, damaged, err := r.Histories(context.Background())
	if err != nil || len(damaged) > 0 {
		t.Fatalf("histories: %v %v", damaged, err)
	}
	var ids []string
	for _, f := range files {
		for _, rec := range f.Records {
			id, err := repo.HistoryRecordID(rec)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func TestHistoryRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	id, err := r.SaveHistory(ctx, []json.RawMessage{historyRecord("a"), historyRecord("b")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveHistory(ctx, []json.RawMessage{historyRecord("c")}); err != nil {
		t.Fatal(err)
	}
	f, err := r.LoadHistory(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != id || len(f.Records) != 2 || string(f.Records[1]) != string(historyRecord("b")) {
		t.Fatalf("loaded %s: %s", f.ID.Str(), f.Records)
	}
	// Another process (another host) reads the same records.
	r2 := repotest.Reopen(t, r)
	if got := allRecordIDs(t, r2); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("records %v", got)
	}
	// The file is sealed: the plaintext is not in the stored bytes.
	raw, err := r.Backend().Load(ctx, backend.Handle{Type: backend.HistoryFile, Name: id.String()}, 0, 0)
	if err != nil || strings.Contains(string(raw), "backup") || repo.FileID(raw) != id {
		t.Fatalf("stored file: %v", err)
	}
	if err := r.RemoveHistory(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveHistory(ctx, id); err != nil {
		t.Fatalf("removing a removed file: %v", err)
	}
	if got := allRecordIDs(t, r); strings.Join(got, ",") != "c" {
		t.Fatalf("after remove: %v", got)
	}
}

func TestHistoryRejectsBadRecords(t *testing.T) {
	r := repotest.New(t)
	for _, recs := range [][]json.RawMessage{
		nil,
		{json.RawMessage(`{"kind":"backup"}`)},
		{json.RawMessage(`{"id":""}`)},
		{json.RawMessage(`{"id":7}`)},
		{json.RawMessage(`["id"]`)},
		{json.RawMessage(`{"id":"` + strings.Repeat("x", 200) + `"}`)},
	} {
		if _, err := r.SaveHistory(context.Background(), recs); err == nil {
			t.Errorf("saved %s", recs)
		}
	}
}

func TestHistoryTamper(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := repotest.NewOn(t, be)
	good, err := r.SaveHistory(ctx, []json.RawMessage{historyRecord("good")})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := r.SaveHistory(ctx, []json.RawMessage{historyRecord("bad")})
	if err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.HistoryFile, Name: bad.String()}
	data, _ := be.Load(ctx, h, 0, 0)
	data[len(data)/2] ^= 1
	if err := be.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadHistory(ctx, bad); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("tampered file loaded: %v", err)
	}
	// A file renamed to its own hash is still rejected: the seal fails.
	renamed := repo.FileID(data)
	if err := be.Save(ctx, backend.Handle{Type: backend.HistoryFile, Name: renamed.String()}, data); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadHistory(ctx, renamed); err == nil {
		t.Fatal("forged file loaded")
	}
	files, damaged, err := r.Histories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].ID != good || len(damaged) != 2 {
		t.Fatalf("files %d, damaged %v", len(files), damaged)
	}
	for _, d := range damaged {
		if d.ID != bad && d.ID != renamed {
			t.Errorf("damaged %s", d.ID.Str())
		}
	}
}

// TestHistoriesRelistsVanishedFiles: a file that disappears between the
// listing and the load (a compaction merged it) makes Histories list again
// and find the merged file, instead of losing its records.
func TestHistoriesRelistsVanishedFiles(t *testing.T) {
	ctx := context.Background()
	fb := faulty.New(mem.New())
	r := repotest.NewOn(t, fb)
	for _, id := range []string{"a", "b"} {
		if _, err := r.SaveHistory(ctx, []json.RawMessage{historyRecord(id)}); err != nil {
			t.Fatal(err)
		}
	}
	fb.Add(faulty.Rule{Method: faulty.Load, Type: backend.HistoryFile, Times: 1, Err: backend.ErrNotExist})
	if got := allRecordIDs(t, r); strings.Join(got, ",") != "a,b" {
		t.Fatalf("records %v", got)
	}
	if fb.Calls(faulty.List) < 2 {
		t.Errorf("listed %d times, want a second listing", fb.Calls(faulty.List))
	}
	// A load that fails for another reason is damage, not a vanished file.
	fb.Clear()
	fb.Add(faulty.Rule{Method: faulty.Load, Type: backend.HistoryFile, Times: 1})
	files, damaged, err := r.Histories(ctx)
	if err != nil || len(files) != 1 || len(damaged) != 1 || !errors.Is(damaged[0], faulty.ErrInjected) {
		t.Fatalf("files %d damaged %v err %v", len(files), damaged, err)
	}
}
