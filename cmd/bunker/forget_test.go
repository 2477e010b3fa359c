package main

import (
	"context"
	"strings"
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

// TestNotForgotten: a forget by id that keeps snapshots names each with its
// reasons and hints at how to lift the guarantee; a policy result or one
// without guarded snapshots is no error.
func TestNotForgotten(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	old := &repo.Snapshot{Time: now.Add(-90 * 24 * time.Hour), Hostname: "h", Paths: []string{"/x"}, ID: repo.FileID([]byte("old"))}
	prot := &repo.Snapshot{Time: now.Add(-60 * 24 * time.Hour), Hostname: "h", Paths: []string{"/x"}, ID: repo.FileID([]byte("prot"))}
	young := &repo.Snapshot{Time: now.Add(-time.Hour), Hostname: "h", Paths: []string{"/x"}, ID: repo.FileID([]byte("young"))}
	all := []*repo.Snapshot{old, prot, young}
	opts := retention.Options{Now: now, GroupBy: retention.DefaultGroupBy, MinRetention: retention.MustParseDuration("7d"),
		Protected: map[repo.ID]time.Time{prot.ID: {}}}

	res, err := retention.Forget(all, []repo.ID{old.ID}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := notForgotten(res, false); err != nil {
		t.Errorf("nothing kept: %v", err)
	}

	res, err = retention.Forget(all, []repo.ID{prot.ID}, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = notForgotten(res, true)
	if want := "snapshot " + prot.ID.Str() + " would not be removed: protected"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if code := exitCode(err); code != exitFatal {
		t.Errorf("exit code %d, want %d", code, exitFatal)
	}

	res, err = retention.Forget(all, []repo.ID{old.ID, prot.ID, young.ID}, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = notForgotten(res, false)
	want := "2 of 3 snapshots not removed: " + young.ID.Str() + ": min-retention (younger than 7d); " + prot.ID.Str() + ": protected"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %q", err, want)
	}
	g := &globalOptions{}
	hints := g.hints(err)
	if len(hints) != 2 || !strings.Contains(hints[0], "min-retention") || !strings.Contains(hints[1], "unprotect") {
		t.Errorf("hints %q: want the minimum retention's, then unprotect's", hints)
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{count(0, "file"), "0 files"},
		{count(1, "file"), "1 file"},
		{count(uint64(2), "file"), "2 files"},
		{count(int64(1), "hard link"), "1 hard link"},
		{count(3, "directory", "directories"), "3 directories"},
		{count(1, "directory", "directories"), "1 directory"},
		{isAre(1) + " " + isAre(2), "is are"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
