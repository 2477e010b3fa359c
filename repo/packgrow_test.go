package repo_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

// TestSaveBlobGrowsPack saves 12 MiB of blobs from several goroutines at
// once. Pack buffers start small and grow while no goroutine is sealing into
// them: every blob must come back intact, and the blobs must share one pack
// (a buffer that cannot grow at once waits instead of closing the pack).
func TestSaveBlobGrowsPack(t *testing.T) {
	ctx := context.Background()
	r, _ := repotest.NewLocal(t)
	const workers, perWorker, size = 4, 24, 128 << 10
	blobs := make([][]byte, workers*perWorker)
	for i := range blobs {
		blobs[i] = randomBytes(uint64(i+1), size)
		binary.LittleEndian.PutUint64(blobs[i], uint64(i))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(blobs); i += workers {
				if _, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(blobs[i]), blobs[i]); err != nil {
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
	r = repotest.Reopen(t, r)
	packs, err := r.ListPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 1 {
		t.Errorf("%d packs, want 1", len(packs))
	}
	for i, b := range blobs {
		got, err := r.LoadBlob(ctx, repo.DataBlob, r.BlobID(b), nil)
		if err != nil {
			t.Fatalf("blob %d: %v", i, err)
		}
		if string(got) != string(b) {
			t.Fatalf("blob %d differs", i)
		}
	}
}
