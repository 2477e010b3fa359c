package prune_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func runRecord(id string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"kind":"check","start":"2026-11-20T02:00:00Z","status":"success"}`, id))
}

// saveRuns writes n history files of two records each; the second record
// of file i is also the first of file i+1, as after an interrupted
// compaction.
func saveRuns(t *testing.T, r *repo.Repository, n int) {
	t.Helper()
	for i := range n {
		recs := []json.RawMessage{runRecord(fmt.Sprintf("r%03d", i)), runRecord(fmt.Sprintf("r%03d", i+1))}
		if _, err := r.SaveHistory(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
}

// runIDs returns the distinct record ids of all history files and the
// number of files.
func runIDs(t *testing.T, r *repo.Repository) (string, int) {
	t.Helper()
	files, damaged, err := r.Histories(context.Background())
	if err != nil || len(damaged) > 0 {
		t.Fatalf("histories: %v %v", damaged, err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, f := range files {
		for _, rec := range f.Records {
			id, _ := repo.HistoryRecordID(rec)
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	return strings.Join(ids, ","), len(files)
}

func TestCompactHistory(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	saveRuns(t, r, prune.HistoryCompactAt)
	plan, err := prune.NewPlan(ctx, r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.CompactHistory || !plan.Empty() || plan.HistoryFiles != prune.HistoryCompactAt {
		t.Fatalf("%d files: compact %v, empty %v", plan.HistoryFiles, plan.CompactHistory, plan.Empty())
	}
	saveRuns(t, r, 4) // more records r000..r004, already present
	want, _ := runIDs(t, r)
	plan, err = prune.NewPlan(ctx, r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.CompactHistory || plan.Empty() || !strings.Contains(plan.String(), "history files:      20 (to merge into one)") {
		t.Fatalf("plan:\n%s", plan)
	}
	// A run recorded after the plan was made is not merged, nor removed.
	late, err := r.SaveHistory(ctx, []json.RawMessage{runRecord("late")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.HistoryFilesMerged != 20 || res.HistoryRecords != prune.HistoryCompactAt+1 {
		t.Errorf("merged %d files, %d records", res.HistoryFilesMerged, res.HistoryRecords)
	}
	got, files := runIDs(t, r)
	if got != "late,"+want || files != 2 {
		t.Errorf("after compaction: %d files, records %s, want late,%s", files, got, want)
	}
	if _, err := r.LoadHistory(ctx, late); err != nil {
		t.Errorf("the late file: %v", err)
	}
}

// TestCompactHistoryCrash fails the compaction between writing the merged
// file and removing the old ones, and part way through the removals: no
// record is lost or shown twice, and a new prune completes the work.
func TestCompactHistoryCrash(t *testing.T) {
	ctx := context.Background()
	for _, after := range []int{0, 3} {
		t.Run(fmt.Sprintf("after%d", after), func(t *testing.T) {
			fb := faulty.New(mem.New())
			r := repotest.NewOn(t, fb)
			saveRuns(t, r, 22)
			want, _ := runIDs(t, r)
			fb.Add(faulty.Rule{Method: faulty.Remove, Type: backend.HistoryFile, After: after})
			_, _, err := prune.Run(ctx, r, prune.Options{})
			if !errors.Is(err, faulty.ErrInjected) {
				t.Fatalf("prune: %v", err)
			}
			got, files := runIDs(t, r)
			if got != want || files != 22+1-after {
				t.Fatalf("after the crash: %d files, records %s, want %s", files, got, want)
			}
			fb.Clear()
			_, res, err := prune.Run(ctx, r, prune.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, files = runIDs(t, r)
			if got != want || files != 1 || res.HistoryFilesMerged != 22+1-after {
				t.Fatalf("after the re-run: %d files (%d merged), records %s, want %s", files, res.HistoryFilesMerged, got, want)
			}
		})
	}
}

func TestCompactHistoryLeavesDamagedFiles(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := repotest.NewOn(t, be)
	saveRuns(t, r, 18)
	bad, err := r.SaveHistory(ctx, []json.RawMessage{runRecord("bad")})
	if err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.HistoryFile, Name: bad.String()}
	data, _ := be.Load(ctx, h, 0, 0)
	data[50] ^= 0xff
	_ = be.Save(ctx, h, data)
	_, res, err := prune.Run(ctx, r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.HistoryFilesMerged != 18 || res.HistoryFilesDamaged != 1 {
		t.Errorf("merged %d, damaged %d", res.HistoryFilesMerged, res.HistoryFilesDamaged)
	}
	if _, err := be.Stat(ctx, h); err != nil {
		t.Errorf("damaged file removed: %v", err)
	}
}

func TestRemoveStaleTempFiles(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.NewLocal(t)
	now := time.Now()
	write := func(rel string, age time.Duration) string {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old1 := write("data/ab/.tmp-ab01-1234", 2*time.Hour)
	old2 := write("snapshots/.tmp-cd02-5678", 25*time.Hour)
	young := write("history/.tmp-ef03-9abc", time.Minute)
	plan, err := prune.NewPlan(ctx, r, prune.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if plan.TempFiles != 2 || plan.TempBytes != 14 || plan.Empty() || !strings.Contains(plan.String(), "temporary files:    2 (14 B, left by interrupted writers, to remove)") {
		t.Fatalf("plan: %d files, %d bytes, empty %v\n%s", plan.TempFiles, plan.TempBytes, plan.Empty(), plan)
	}
	res, err := plan.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.TempFilesRemoved != 2 || res.TempBytesRemoved != 14 {
		t.Errorf("removed %d files, %d bytes", res.TempFilesRemoved, res.TempBytesRemoved)
	}
	for _, p := range []string{old1, old2} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a save in progress lost its temporary file: %v", err)
	}
}
