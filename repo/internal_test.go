package repo

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
)

func testRepo(t *testing.T) *Repository {
	t.Helper()
	TestUseLowSecurityKDFParameters()
	r, err := Init(context.Background(), mem.New(), "pw", InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func countLocks(t *testing.T, r *Repository) int {
	t.Helper()
	ids, err := r.ListFiles(context.Background(), backend.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

func TestLockConflicts(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t)
	s1, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	_, err = r.Lock(ctx, true)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("exclusive lock while shared held: %v", err)
	}
	host, _ := os.Hostname()
	if le.Holder.PID != os.Getpid() || le.Holder.Hostname != host || !strings.Contains(err.Error(), host) {
		t.Fatalf("holder info: %+v, %v", le.Holder, err)
	}
	if countLocks(t, r) != 2 {
		t.Fatal("failed lock attempt left its lock file")
	}
	if err := s1.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Unlock(); err != nil {
		t.Fatal(err)
	}
	ex, err := r.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, false); !errors.As(err, &le) || !le.Holder.Exclusive {
		t.Fatalf("shared lock while exclusive held: %v", err)
	}
	if err := ex.Unlock(); err != nil {
		t.Fatal(err)
	}
	if countLocks(t, r) != 0 {
		t.Fatal("lock files left after unlock")
	}
}

func TestStaleLocks(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t)
	host, _ := os.Hostname()
	old := newLockInfo(true)
	old.Time = time.Now().Add(-time.Hour)
	if _, err := r.saveLock(ctx, old); err != nil {
		t.Fatal(err)
	}
	dead := newLockInfo(true)
	dead.PID = 1 << 30 // no such process
	if _, err := r.saveLock(ctx, dead); err != nil {
		t.Fatal(err)
	}
	live := newLockInfo(false)
	live.Hostname = "other-" + host
	if _, err := r.saveLock(ctx, live); err != nil {
		t.Fatal(err)
	}
	// Stale exclusive locks do not block a shared lock.
	l, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatalf("lock with only stale exclusive locks: %v", err)
	}
	_ = l.Unlock()
	n, err := r.RemoveStaleLocks(ctx)
	if err != nil || n != 2 {
		t.Fatalf("RemoveStaleLocks = %d, %v; want 2", n, err)
	}
	locks, err := r.Locks(ctx)
	if err != nil || len(locks) != 1 || locks[0].Hostname != live.Hostname {
		t.Fatalf("remaining locks: %v %v", locks, err)
	}
}

func TestLockRefresh(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t)
	old := LockRefreshInterval
	LockRefreshInterval = 20 * time.Millisecond
	defer func() { LockRefreshInterval = old }()
	l, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	first := l.Info().ID
	deadline := time.Now().Add(5 * time.Second)
	for l.Info().ID == first && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Info().ID == first {
		t.Fatal("lock was not refreshed")
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	if n := countLocks(t, r); n != 0 {
		t.Fatalf("%d lock files after unlock", n)
	}
}

func TestNewerFormatRejected(t *testing.T) {
	ctx := context.Background()
	TestUseLowSecurityKDFParameters()
	be := mem.New()
	r, err := Init(ctx, be, "pw", InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Snapshot of version 2.
	id, err := r.saveSealed(ctx, backend.SnapshotFile, []byte(`{"version":2,"time":"2030-01-01T00:00:00Z","paths":[],"hostname":"h"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadSnapshot(ctx, id); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("snapshot v2: %v", err)
	}
	// Index of version 2.
	plain := encodeIndexFile(&IndexFile{})
	plain[0] = 2
	iid, err := r.saveSealed(ctx, backend.IndexFile, plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, "pw"); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("index v2: %v", err)
	}
	_ = be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: iid.String()})
	// Config of version 2.
	cfg := []byte(`{"version":2}`)
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, r.crypt.seal(nil, cfg)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, "pw"); !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("config v2: %v", err)
	}
	// Key file of version 2 (the only key).
	be2 := mem.New()
	if _, err := Init(ctx, be2, "pw", InitOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = be2.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		_ = be2.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: fi.Name})
		return nil
	})
	kb := []byte(`{"version":2,"kdf":"argon2id"}`)
	if err := be2.Save(ctx, backend.Handle{Type: backend.KeyFile, Name: FileID(kb).String()}, kb); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be2, "pw"); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("key v2: %v", err)
	}
}

func TestIncrementalIndexFlush(t *testing.T) {
	ctx := context.Background()
	oldPack := PackSize
	PackSize = 4 << 10
	defer func() { PackSize = oldPack }()
	r := testRepo(t)
	// 20 blobs of 5000 bytes: one pack each; after 8 and 16 packs an index
	// file is written without Flush.
	for range 20 {
		d := make([]byte, 5000)
		_, _ = rand.Read(d)
		if _, _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(d), d); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := r.ListFiles(ctx, backend.IndexFile)
	if len(ids) != 2 {
		t.Fatalf("%d index files before Flush, want 2", len(ids))
	}
	// A new process (after kill -9) sees the 16 indexed blobs.
	r2, err := Open(ctx, r.be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if n := r2.BlobCount(DataBlob); n != 16 {
		t.Fatalf("reopened repository knows %d blobs, want 16", n)
	}
	// The interval triggers a flush too.
	oldInt := indexFlushInterval
	indexFlushInterval = 0
	defer func() { indexFlushInterval = oldInt }()
	d := make([]byte, 5000)
	_, _ = rand.Read(d)
	if _, _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(d), d); err != nil {
		t.Fatal(err)
	}
	ids, _ = r.ListFiles(ctx, backend.IndexFile)
	if len(ids) != 3 {
		t.Fatalf("%d index files after interval, want 3", len(ids))
	}
}

func TestSaveErrorIsSticky(t *testing.T) {
	ctx := context.Background()
	oldPack := PackSize
	PackSize = 1 << 10
	defer func() { PackSize = oldPack }()
	r := testRepo(t)
	failing := &failSave{Backend: r.be}
	r.be = failing
	d := make([]byte, 2000)
	_, _ = rand.Read(d)
	if _, _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(d), d); err == nil {
		t.Fatal("pack save error not returned")
	}
	failing.off = true
	d[0] = 2
	if _, _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(d), d); err == nil {
		t.Fatal("SaveBlob after a failed pack write succeeded")
	}
	if err := r.Flush(ctx); err == nil {
		t.Fatal("Flush after a failed pack write succeeded")
	}
}

type failSave struct {
	backend.Backend
	off bool
}

func (f *failSave) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if f.off {
		return f.Backend.Save(ctx, h, data)
	}
	return errors.New("disk full")
}

func TestPolynomial(t *testing.T) {
	// Known irreducible polynomial (restic's test vector) and a reducible one.
	if !polIrreducible(0x3DA3358B4DC173) {
		t.Error("0x3DA3358B4DC173 is irreducible")
	}
	if polIrreducible(1<<53 | 1<<7 | 1<<3 | 1) { // even number of terms: divisible by x+1
		t.Error("reducible polynomial accepted")
	}
	if polIrreducible(1<<53 | 1<<1) { // divisible by x
		t.Error("x*(x^52+1) accepted")
	}
	p, err := RandomPolynomial()
	if err != nil || polDeg(p) != 53 || !polIrreducible(p) {
		t.Fatalf("RandomPolynomial = %x, %v", p, err)
	}
}

func TestIndexOrphanPacks(t *testing.T) {
	ctx := context.Background()
	oldPack := PackSize
	PackSize = 4 << 10
	defer func() { PackSize = oldPack }()
	r := testRepo(t)
	var ids []ID
	for range 5 {
		d := make([]byte, 5000)
		_, _ = rand.Read(d)
		id := r.BlobID(d)
		ids = append(ids, id)
		if _, _, err := r.SaveBlob(ctx, DataBlob, id, d); err != nil {
			t.Fatal(err)
		}
	}
	// Killed here: 5 packs written, no index file.
	r2, err := Open(ctx, r.be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if r2.BlobCount(DataBlob) != 0 {
		t.Fatal("blobs indexed before repair")
	}
	n, skipped, err := r2.IndexOrphanPacks(ctx)
	if err != nil || n != 5 || skipped != 0 {
		t.Fatalf("IndexOrphanPacks = %d, %d, %v", n, skipped, err)
	}
	r3, err := Open(ctx, r.be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := r3.LoadBlob(ctx, DataBlob, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, _ := r3.IndexOrphanPacks(ctx); n != 0 {
		t.Fatalf("second run indexed %d packs", n)
	}
}

func TestCompactIndex(t *testing.T) {
	ctx := context.Background()
	oldPack := PackSize
	PackSize = 4 << 10
	defer func() { PackSize = oldPack }()
	r := testRepo(t)
	var ids []ID
	for i := range 30 {
		d := make([]byte, 5000)
		_, _ = rand.Read(d)
		id := r.BlobID(d)
		ids = append(ids, id)
		if _, _, err := r.SaveBlob(ctx, DataBlob, id, d); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := r.ListFiles(ctx, backend.IndexFile)
	r2, err := Open(ctx, r.be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	n, err := r2.CompactIndex(ctx)
	if err != nil || n != len(before) || n < 5 {
		t.Fatalf("CompactIndex = %d, %v (had %d files)", n, err, len(before))
	}
	after, _ := r.ListFiles(ctx, backend.IndexFile)
	if len(after) != 1 {
		t.Fatalf("%d index files after compaction", len(after))
	}
	r3, err := Open(ctx, r.be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := r3.LoadBlob(ctx, DataBlob, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if r3.BlobCount(DataBlob) != 30 {
		t.Fatalf("%d blobs after compaction", r3.BlobCount(DataBlob))
	}
}
