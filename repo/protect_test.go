package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/local"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func saveEmptySnapshot(t *testing.T, r *repo.Repository, at time.Time) *repo.Snapshot {
	t.Helper()
	sn := &repo.Snapshot{Time: at, Hostname: "h", Paths: []string{"/x"}}
	if _, err := r.SaveSnapshot(context.Background(), sn); err != nil {
		t.Fatal(err)
	}
	return sn
}

func TestProtections(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.NewLocal(t)
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	a := saveEmptySnapshot(t, r, now.Add(-48*time.Hour))
	b := saveEmptySnapshot(t, r, now.Add(-24*time.Hour))

	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: a.ID, Time: now, Hostname: "h", Note: "audit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: b.ID, Time: now, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: b.ID, Time: now, Until: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	missing := repo.FileID([]byte("no such snapshot"))
	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: missing}); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("protect a missing snapshot: %v", err)
	}

	r = repotest.Reopen(t, r)
	ps, err := r.Protections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("%d protections, want 3", len(ps))
	}
	got := repo.ProtectedSnapshots(ps, now)
	if u, ok := got[a.ID]; !ok || !u.IsZero() {
		t.Errorf("a: %v %v, want protected without end", u, ok)
	}
	if u := got[b.ID]; !u.Equal(now.Add(2 * time.Hour)) {
		t.Errorf("b protected until %v, want the later end", u)
	}
	if later := repo.ProtectedSnapshots(ps, now.Add(3*time.Hour)); len(later) != 1 {
		t.Errorf("after b's protections end: %v", later)
	}

	// Stored under protect/, sealed: the note is not readable in the file.
	be := local.New(dir)
	n := 0
	if err := be.List(ctx, backend.ProtectFile, func(fi backend.FileInfo) error {
		n++
		data, err := be.Load(ctx, backend.Handle{Type: backend.ProtectFile, Name: fi.Name}, 0, 0)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), "audit") {
			t.Error("protection file is not encrypted")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d files in protect/, want 3", n)
	}

	removed, err := r.RemoveProtections(ctx, b.ID)
	if err != nil || removed != 2 {
		t.Fatalf("RemoveProtections = %d, %v", removed, err)
	}
	ps, err = r.Protections(ctx)
	if err != nil || len(ps) != 1 || ps[0].Snapshot != a.ID || ps[0].Note != "audit" {
		t.Fatalf("after unprotect: %+v, %v", ps, err)
	}
}

func TestMinRetentionSetting(t *testing.T) {
	ctx := context.Background()
	repo.TestUseLowSecurityKDFParameters()
	r, dir := repotest.NewLocal(t)
	if got := r.Config().MinRetention; got != "" {
		t.Fatalf("default min retention %q", got)
	}
	if err := r.SetMinRetention(ctx, "30d"); err != nil {
		t.Fatal(err)
	}
	r2, err := repo.Open(ctx, local.New(dir), repotest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Config().MinRetention; got != "30d" {
		t.Errorf("after reopen: %q", got)
	}
	for _, bad := range []string{"30", "30x", "d", "1d1d", "-3d", "99999999d"} {
		if err := r2.SetMinRetention(ctx, bad); err == nil {
			t.Errorf("SetMinRetention(%q): no error", bad)
		}
	}
	if err := r2.SetMinRetention(ctx, "1y2m3w4d5h"); err != nil {
		t.Fatal(err)
	}
	if err := r2.SetMinRetention(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r3 := repotest.Reopen(t, r2)
	if got := r3.Config().MinRetention; got != "" {
		t.Errorf("after clearing: %q", got)
	}
	// Init takes it as an option.
	r4, err := repo.Init(ctx, local.New(t.TempDir()), "pw", repo.InitOptions{MinRetention: "2w"})
	if err != nil {
		t.Fatal(err)
	}
	if r4.Config().MinRetention != "2w" {
		t.Errorf("init: %q", r4.Config().MinRetention)
	}
	if _, err := repo.Init(ctx, local.New(t.TempDir()), "pw", repo.InitOptions{MinRetention: "2 weeks"}); err == nil {
		t.Error("init with an invalid minimum retention: no error")
	}
}
