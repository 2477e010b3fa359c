package check_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func TestHistoryFiles(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.NewLocal(t)
	fixture(t, r, 1)
	rec := json.RawMessage(`{"id":"5f0c9d2e8b7a61430f1e2d3c4b5a6978","kind":"backup","start":"2026-11-20T02:00:00Z","status":"success"}`)
	id, err := r.SaveHistory(ctx, []json.RawMessage{rec})
	if err != nil {
		t.Fatal(err)
	}
	if res := mustCheck(t, r, check.Options{}); !res.OK() || res.Warnings() != 0 {
		t.Fatalf("intact history: %+v", res.Problems)
	}

	// A damaged history file is a warning: no snapshot depends on it.
	path := filepath.Join(dir, "history", id.String())
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := mustCheck(t, r, check.Options{})
	if !res.OK() || !hasKind(res, check.HistoryDamaged) || res.Warnings() != 1 {
		t.Fatalf("damaged history: %+v", res.Problems)
	}
	if p := res.Problems[0]; p.File != "history/"+id.String() || !strings.Contains(p.Message, "no snapshot is affected") {
		t.Errorf("problem: %+v", p)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	// Temporary files: a young one belongs to a save in progress and is
	// not mentioned; an old one is a leftover, a warning.
	young := filepath.Join(dir, "history", ".tmp-young")
	old := filepath.Join(dir, "data", ".tmp-old")
	for _, p := range []string{young, old} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if res := mustCheck(t, r, check.Options{}); !res.OK() || res.Warnings() != 0 {
		t.Fatalf("young temporary files: %+v", res.Problems)
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	res = mustCheck(t, r, check.Options{})
	if !res.OK() || !hasKind(res, check.TempFiles) || res.Warnings() != 1 ||
		res.Problems[0].Message != "1 temporary file (7 B) left by interrupted writers (harmless; removed by prune)" {
		t.Fatalf("old temporary file: %+v", res.Problems)
	}
}
