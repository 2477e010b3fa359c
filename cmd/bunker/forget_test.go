package main

import (
	"context"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/repotest"
	"github.com/bunkerbackup/bunker/retention"
)

// TestForgetRemovesExpiredProtections: a snapshot whose protection has
// expired is removed by policy, and its protection file with it; an active
// protection keeps its snapshot and its file.
func TestForgetRemovesExpiredProtections(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	now := time.Now()
	var sns []*repo.Snapshot
	for i := range 3 {
		sn := &repo.Snapshot{Time: now.Add(time.Duration(i-10) * 24 * time.Hour), Hostname: "h", Paths: []string{"/x"}}
		if _, err := r.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
		sns = append(sns, sn)
	}
	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: sns[0].ID, Until: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: sns[1].ID}); err != nil {
		t.Fatal(err)
	}
	all, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts, ps, err := retentionOptions(ctx, r, retention.DefaultGroupBy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := retention.Apply(all, retention.Policy{Last: 1}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rm := res.Remove(); len(rm) != 1 || rm[0].ID != sns[0].ID {
		t.Fatalf("remove %v, want only the snapshot whose protection expired", rm)
	}
	if err := removeSnapshots(ctx, r, res.Remove(), ps); err != nil {
		t.Fatal(err)
	}
	left, err := r.Protections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Snapshot != sns[1].ID {
		t.Errorf("protections left: %+v, want only the active one", left)
	}
}
