package repo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func saveSnapshotWithBlob(t *testing.T, r *repo.Repository, data []byte) repo.ID {
	t.Helper()
	ctx := context.Background()
	id := r.BlobID(data)
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, data); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return id
}

// A process that opened the repository before another one changed the
// index sees the change once it holds the lock, so it never deduplicates
// against packs that prune removed, nor misses blobs stored meanwhile.
func TestLockReloadsChangedIndex(t *testing.T) {
	ctx := context.Background()
	a := repotest.New(t)
	b := repotest.Reopen(t, a) // opened before a's blob exists
	id := saveSnapshotWithBlob(t, a, []byte("stored by another process after b opened"))
	if b.HasBlob(repo.DataBlob, id) {
		t.Fatal("b sees the blob before locking: the test proves nothing")
	}
	l, err := b.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if !b.HasBlob(repo.DataBlob, id) {
		t.Error("after taking the lock, b does not see the blob another process indexed")
	}
	l.Unlock()

	// The other way round: index files removed (as prune does) after c
	// opened must not leave c believing the blobs exist.
	c := repotest.Reopen(t, a)
	ids, err := a.ListFiles(ctx, backend.IndexFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ids {
		if err := a.Backend().Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: f.String()}); err != nil {
			t.Fatal(err)
		}
	}
	l, err = c.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if c.HasBlob(repo.DataBlob, id) {
		t.Error("after taking the lock, c still trusts an index that was removed")
	}
}

// A lock removed by someone else (an operator's 'unlock') is noticed at the
// next refresh; the repository then refuses to save snapshots.
func TestLostLockRefusesCommits(t *testing.T) {
	old := repo.LockRefreshInterval
	repo.LockRefreshInterval = 20 * time.Millisecond
	defer func() { repo.LockRefreshInterval = old }()
	ctx := context.Background()
	r := repotest.New(t)
	l, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	id := l.Info().ID
	if err := r.Backend().Remove(ctx, backend.Handle{Type: backend.LockFile, Name: id.String()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.LockErr() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(r.LockErr(), repo.ErrLockLost) {
		t.Fatalf("LockErr = %v, want ErrLockLost", r.LockErr())
	}
	saveSnapshotWithBlob(t, r, []byte("data"))
	_, err = r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Paths: []string{"/x"}, Hostname: "h"})
	if !errors.Is(err, repo.ErrLockLost) {
		t.Fatalf("SaveSnapshot after losing the lock: %v", err)
	}
}

// refreshingBackend replays the race of a lock holder's refresh: the first
// time the locker reads the holder's lock file, the holder refreshes (writes
// a new lock file, removes the old one) and the read finds nothing.
type refreshingBackend struct {
	backend.Backend
	holder *repo.Lock
	done   bool
}

func (b *refreshingBackend) Load(ctx context.Context, h backend.Handle, off, n int64) ([]byte, error) {
	if h.Type == backend.LockFile && !b.done && h.Name == b.holder.Info().ID.String() {
		b.done = true
		if err := b.holder.Refresh(ctx); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("load %s: %w", h.Name, backend.ErrNotExist)
	}
	return b.Backend.Load(ctx, h, off, n)
}

// A lock file that vanishes while the locks are checked was replaced by its
// holder's refresh: the new one must still exclude the locker.
func TestLockRefreshRaceStillExcludes(t *testing.T) {
	ctx := context.Background()
	holderRepo := repotest.New(t)
	held, err := holderRepo.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	be := &refreshingBackend{Backend: holderRepo.Backend(), holder: held}
	r, err := repo.Open(ctx, be, repotest.Password)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Lock(ctx, false)
	var locked *repo.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("shared lock taken while an exclusive lock is held (refreshed during the check): %v", err)
	}
	if !be.done {
		t.Fatal("the refresh race was not exercised")
	}
}
