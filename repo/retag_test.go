package repo_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

// snapshotIDs lists the snapshot files.
func snapshotIDs(t *testing.T, r *repo.Repository) []repo.ID {
	t.Helper()
	ids, err := r.ListFiles(context.Background(), backend.SnapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// protectedBy returns the protections of each snapshot.
func protectedBy(t *testing.T, r *repo.Repository) map[repo.ID][]*repo.Protection {
	t.Helper()
	ps, err := r.Protections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[repo.ID][]*repo.Protection)
	for _, p := range ps {
		out[p.Snapshot] = append(out[p.Snapshot], p)
	}
	return out
}

func TestRetag(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	sn := &repo.Snapshot{Time: now, Hostname: "h", Paths: []string{"/x"}, Tags: []string{"a", "b"}, Job: "j"}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	until := now.Add(90 * 24 * time.Hour)
	if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: sn.ID, Time: now, Until: until, Note: "audit"}); err != nil {
		t.Fatal(err)
	}

	// Unchanged tags (order and repeats do not count): nothing is written.
	got, err := r.Retag(ctx, sn, []string{"b", "a", "a"})
	if err != nil || got != sn {
		t.Fatalf("retag to the same tags: %v, %v; want the snapshot itself", got, err)
	}
	if ids := snapshotIDs(t, r); len(ids) != 1 || ids[0] != sn.ID {
		t.Fatalf("snapshots after a no-op retag: %v", ids)
	}

	nsn, err := r.Retag(ctx, sn, []string{"a", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if nsn.ID == sn.ID || nsn.ID.IsNull() {
		t.Fatalf("new id %v, old %v", nsn.ID, sn.ID)
	}
	if ids := snapshotIDs(t, r); len(ids) != 1 || ids[0] != nsn.ID {
		t.Fatalf("snapshots after retag: %v, want only %v", ids, nsn.ID)
	}
	loaded, err := repotest.Reopen(t, r).LoadSnapshot(ctx, nsn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loaded.Tags, []string{"a", "c"}) {
		t.Errorf("tags %q", loaded.Tags)
	}
	if loaded.Original == nil || *loaded.Original != sn.ID {
		t.Errorf("original %v, want %v", loaded.Original, sn.ID)
	}
	if !loaded.Time.Equal(now) || loaded.Hostname != "h" || loaded.Job != "j" || !slices.Equal(loaded.Paths, []string{"/x"}) {
		t.Errorf("retagged snapshot changed more than its tags: %+v", loaded)
	}
	if !slices.Equal(sn.Tags, []string{"a", "b"}) || sn.Original != nil {
		t.Errorf("the old snapshot value was modified: %+v", sn)
	}
	ps := protectedBy(t, r)
	if len(ps[sn.ID]) != 0 {
		t.Errorf("old snapshot still has %d protections", len(ps[sn.ID]))
	}
	if len(ps[nsn.ID]) != 1 || !ps[nsn.ID][0].Until.Equal(until) || ps[nsn.ID][0].Note != "audit" {
		t.Errorf("new snapshot protections: %+v", ps[nsn.ID])
	}

	// Retagging a retagged snapshot names the first original, and no tags
	// at all is a change too.
	third, err := r.Retag(ctx, loaded, nil)
	if err != nil {
		t.Fatal(err)
	}
	if third.Original == nil || *third.Original != sn.ID || third.Tags != nil {
		t.Errorf("second retag: original %v, tags %q", third.Original, third.Tags)
	}
	if ids := snapshotIDs(t, r); len(ids) != 1 || ids[0] != third.ID {
		t.Errorf("snapshots: %v, want only %v", ids, third.ID)
	}
	if ps := protectedBy(t, r); len(ps) != 1 || len(ps[third.ID]) != 1 {
		t.Errorf("protections: %v", ps)
	}
}

func TestRetagFaults(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		rule faulty.Rule
		// both: the old and the new snapshot stay (the removal failed);
		// otherwise only the old one.
		both bool
		// stray: a write that failed but was stored leaves an unprotected
		// copy with the new tags (as a crash after step 1 would).
		stray bool
	}{
		{name: "save snapshot", rule: faulty.Rule{Method: faulty.Save, Type: backend.SnapshotFile}},
		{name: "save snapshot stored", rule: faulty.Rule{Method: faulty.Save, Type: backend.SnapshotFile, Persist: true}, stray: true},
		{name: "save protection", rule: faulty.Rule{Method: faulty.Save, Type: backend.ProtectFile, After: 1}},
		{name: "list protections", rule: faulty.Rule{Method: faulty.List, Type: backend.ProtectFile}},
		{name: "remove snapshot", rule: faulty.Rule{Method: faulty.Remove, Type: backend.SnapshotFile}, both: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := faulty.New(mem.New())
			r := repotest.NewOn(t, fb)
			sn := &repo.Snapshot{Time: now, Hostname: "h", Paths: []string{"/x"}, Tags: []string{"a"}}
			if _, err := r.SaveSnapshot(ctx, sn); err != nil {
				t.Fatal(err)
			}
			// Two protections: the second save of a protection fails.
			for _, note := range []string{"one", "two"} {
				if _, err := r.SaveProtection(ctx, &repo.Protection{Snapshot: sn.ID, Time: now, Note: note}); err != nil {
					t.Fatal(err)
				}
			}
			fb.Add(tc.rule)
			nsn, err := r.Retag(ctx, sn, []string{"b"})
			if !errors.Is(err, faulty.ErrInjected) {
				t.Fatalf("retag: %v, want the injected fault", err)
			}
			fb.Clear()

			ids := snapshotIDs(t, r)
			ps := protectedBy(t, r)
			if !slices.Contains(ids, sn.ID) {
				t.Fatalf("the old snapshot is gone: %v", ids)
			}
			if len(ps[sn.ID]) != 2 {
				t.Errorf("old snapshot has %d protections, want 2", len(ps[sn.ID]))
			}
			if tc.both {
				if nsn == nil || len(ids) != 2 || !slices.Contains(ids, nsn.ID) {
					t.Fatalf("snapshots %v, want the old and the new one", ids)
				}
				if len(ps[nsn.ID]) != 2 {
					t.Errorf("new snapshot has %d protections, want 2", len(ps[nsn.ID]))
				}
				return
			}
			if nsn != nil {
				t.Errorf("retag returned %v with its error", nsn.ID)
			}
			if len(ids) != 1 && !(tc.stray && len(ids) == 2) {
				t.Errorf("snapshots %v, want only the old one", ids)
			}
			if len(ps) != 1 {
				t.Errorf("protections of %d snapshots, want only the old one's", len(ps))
			}
		})
	}
}

func TestSameTags(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		want bool
	}{
		{nil, nil, true},
		{nil, []string{}, true},
		{[]string{"a", "b"}, []string{"b", "a"}, true},
		{[]string{"a", "a"}, []string{"a"}, true},
		{[]string{"a"}, []string{"a", "b"}, false},
		{[]string{"a"}, nil, false},
	} {
		if got := repo.SameTags(tc.a, tc.b); got != tc.want {
			t.Errorf("SameTags(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
