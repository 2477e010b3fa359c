package restore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"

	"github.com/bunkerbackup/bunker/repo"
)

// fakeRepo is an in-memory Repo for tests: blobs keyed by a keyed BLAKE3
// id like the real repository, with damage and lies injectable.
type fakeRepo struct {
	mu      sync.Mutex
	key     [32]byte
	data    map[repo.ID][]byte
	trees   map[repo.ID]*repo.Tree
	lists   map[repo.ID][]repo.DiskChunk
	damaged map[repo.ID]bool
	lies    map[repo.ID][]byte // returned instead of the blob, without error
	loads   atomic.Int64
}

func newFakeRepo() *fakeRepo {
	f := &fakeRepo{
		data:    make(map[repo.ID][]byte),
		trees:   make(map[repo.ID]*repo.Tree),
		lists:   make(map[repo.ID][]repo.DiskChunk),
		damaged: make(map[repo.ID]bool),
		lies:    make(map[repo.ID][]byte),
	}
	copy(f.key[:], "bunker test blob id key 32 bytes")
	return f
}

func (f *fakeRepo) BlobID(b []byte) repo.ID {
	h, err := blake3.NewKeyed(f.key[:])
	if err != nil {
		panic(err)
	}
	h.Write(b)
	var id repo.ID
	copy(id[:], h.Sum(nil))
	return id
}

func (f *fakeRepo) saveData(b []byte) repo.ID {
	id := f.BlobID(b)
	f.mu.Lock()
	f.data[id] = append([]byte(nil), b...)
	f.mu.Unlock()
	return id
}

func (f *fakeRepo) saveTree(t *repo.Tree) repo.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.BlobID(fmt.Appendf(nil, "tree %d", len(f.trees)))
	f.trees[id] = t
	return id
}

func (f *fakeRepo) saveChunkList(chunks []repo.DiskChunk, per int) []repo.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []repo.ID
	for len(chunks) > 0 {
		n := min(per, len(chunks))
		id := f.BlobID(fmt.Appendf(nil, "list %d", len(f.lists)))
		f.lists[id] = append([]repo.DiskChunk(nil), chunks[:n]...)
		ids = append(ids, id)
		chunks = chunks[n:]
	}
	return ids
}

func (f *fakeRepo) LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.loads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if t != repo.DataBlob {
		return nil, fmt.Errorf("load blob %s: wrong type %v", id.Str(), t)
	}
	if f.damaged[id] {
		return nil, fmt.Errorf("load blob %s from pack 0badc0de: ciphertext verification failed", id.Str())
	}
	if b, ok := f.lies[id]; ok {
		return append(buf[:0], b...), nil
	}
	b, ok := f.data[id]
	if !ok {
		return nil, fmt.Errorf("load blob %s: %w", id.Str(), errors.New("blob not found"))
	}
	return append(buf[:0], b...), nil
}

func (f *fakeRepo) LoadTree(ctx context.Context, id repo.ID) (*repo.Tree, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.damaged[id] {
		return nil, fmt.Errorf("load tree %s: ciphertext verification failed", id.Str())
	}
	t, ok := f.trees[id]
	if !ok {
		return nil, fmt.Errorf("tree %s not found", id.Str())
	}
	return t, nil
}

func (f *fakeRepo) LoadChunkList(ctx context.Context, ids []repo.ID, fn func(repo.DiskChunk) error) error {
	for _, id := range ids {
		f.mu.Lock()
		l, ok := f.lists[id]
		f.mu.Unlock()
		if !ok {
			return fmt.Errorf("chunk list %s not found", id.Str())
		}
		for _, c := range l {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

type bytesWriterAt struct{ b []byte }

func (w *bytesWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if n := int(off) + len(p); n > len(w.b) {
		w.b = append(w.b, make([]byte, n-len(w.b))...)
	}
	return copy(w.b[off:], p), nil
}
