package repo

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// slowSave delays every pack write and records how many packs of each
// type were in memory while one was being written.
type slowSave struct {
	backend.Backend
	r       *Repository
	maxSeen atomic.Int64
	writing atomic.Int64
	maxConc atomic.Int64
}

func (s *slowSave) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.PackFile {
		n := s.writing.Add(1)
		defer s.writing.Add(-1)
		for {
			m := s.maxConc.Load()
			if n <= m || s.maxConc.CompareAndSwap(m, n) {
				break
			}
		}
		s.r.pmu.Lock()
		in := int64(s.r.inMemory[DataBlob])
		s.r.pmu.Unlock()
		for {
			m := s.maxSeen.Load()
			if in <= m || s.maxSeen.CompareAndSwap(m, in) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s.Backend.Save(ctx, h, data)
}

// TestPacksInMemoryBounded saves blobs from more goroutines than there are
// pack buffers into a backend slower than the savers: the savers must wait
// for pack writes rather than fill more packs, and every blob must be
// stored.
func TestPacksInMemoryBounded(t *testing.T) {
	ctx := context.Background()
	oldPack := PackSize
	PackSize = 16 << 10
	defer func() { PackSize = oldPack }()
	r := testRepo(t)
	slow := &slowSave{Backend: r.be, r: r}
	r.be = slow
	const workers, perWorker = 6, 40
	var ids sync.Map
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				d := make([]byte, 3000)
				_, _ = rand.Read(d)
				id := r.BlobID(d)
				ids.Store(id, d)
				if _, _, err := r.SaveBlob(ctx, DataBlob, id, d); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if m := slow.maxSeen.Load(); m > maxPacksInMemory {
		t.Errorf("%d data packs in memory, want at most %d", m, maxPacksInMemory)
	}
	if m := slow.maxConc.Load(); m < 2 {
		t.Errorf("at most %d pack written at a time: a pack is not filled while another is written", m)
	}
	if r.inMemory[DataBlob] != 0 || r.inMemory[TreeBlob] != 0 {
		t.Errorf("packs in memory after Flush: %v", r.inMemory)
	}
	n := 0
	ids.Range(func(k, v any) bool {
		n++
		got, err := r.LoadBlob(ctx, DataBlob, k.(ID), nil)
		if err != nil || string(got) != string(v.([]byte)) {
			t.Errorf("blob %s: %v", k.(ID).Str(), err)
		}
		return true
	})
	if n != workers*perWorker {
		t.Fatalf("%d blobs, want %d", n, workers*perWorker)
	}
}
