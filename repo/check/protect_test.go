package check_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func TestProtections(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.NewLocal(t)
	fixture(t, r, 1)
	sns, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: sns[0].ID, Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if res := mustCheck(t, r, check.Options{}); !res.OK() || res.Warnings() != 0 {
		t.Fatalf("protected snapshot: %+v", res.Problems)
	}

	// The snapshot goes (by hand): the protection is an orphan, a warning.
	if err := r.RemoveSnapshot(ctx, sns[0].ID); err != nil {
		t.Fatal(err)
	}
	res := mustCheck(t, r, check.Options{})
	if !res.OK() || !hasKind(res, check.ProtectionOrphaned) {
		t.Errorf("orphaned protection: %+v", res.Problems)
	}

	// A damaged protection file is an error.
	matches, _ := filepath.Glob(filepath.Join(dir, "protect", "*"))
	if len(matches) != 1 {
		t.Fatalf("protect/ holds %d files", len(matches))
	}
	if err := os.WriteFile(matches[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = mustCheck(t, r, check.Options{})
	if res.OK() || !hasKind(res, check.ProtectionDamaged) || !hasKind(res, check.FileNameMismatch) {
		t.Errorf("damaged protection: %+v", res.Problems)
	}
}

func hasKind(res *check.Result, k check.Kind) bool {
	for _, p := range res.Problems {
		if p.Kind == k {
			return true
		}
	}
	return false
}
