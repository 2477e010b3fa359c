package transfer

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/bunkerbackup/bunker/repo"
)

// Options tune a copy.
type Options struct {
	// Workers is the number of blobs loaded and saved at once; 0 means
	// GOMAXPROCS.
	Workers int
	// Progress receives progress; nil is a no-op.
	Progress Progress
}

// Progress receives copy progress.
type Progress interface {
	// Snapshot is called when work on a source snapshot starts; skip is
	// true when the destination already holds a copy of it.
	Snapshot(sn *repo.Snapshot, skip bool)
	// Blob reports a data blob of size bytes (plaintext) that was copied
	// (stored is true) or that the destination already had. It is called
	// from several goroutines at once.
	Blob(size int64, stored bool)
}

// Result describes what happened to one source snapshot.
type Result struct {
	Source *repo.Snapshot
	// Copy is the snapshot in the destination: the new one, or the
	// earlier copy when Skipped.
	Copy    *repo.Snapshot
	Skipped bool

	BlobsStored int   // data blobs stored in the destination
	BlobsKnown  int   // data blobs the destination already had
	BytesStored int64 // plaintext bytes of the data blobs stored
}

// maxMapped bounds the remembered source-to-destination blob and tree ids
// (about 100 bytes each).
const maxMapped = 1 << 20

// Copy copies the snapshots sns of src into dst, in the order given, and
// returns one Result per snapshot. Snapshots already copied are skipped.
// The caller holds (at least shared) locks on both repositories.
//
// Each snapshot's blobs are stored, then dst is flushed (packs, index), then
// the snapshot is saved. The copy's Parent is the copy of the source's
// parent when that was copied or found by this call, else nil. On error,
// the results of the snapshots finished before are returned with it.
func Copy(ctx context.Context, src, dst *repo.Repository, sns []*repo.Snapshot, opts Options) ([]Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	existing, err := dst.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list destination snapshots: %w", err)
	}
	c := &copier{
		src: src, dst: dst, workers: opts.Workers, prog: opts.Progress,
		data:  make(map[repo.ID]repo.ID),
		trees: make(map[repo.ID]repo.ID),
		loads: make(chan struct{}, opts.Workers),
		walks: make(chan struct{}, opts.Workers),
	}
	if c.prog == nil {
		c.prog = noProgress{}
	}
	copies := make(map[repo.ID]repo.ID) // source snapshot id -> its copy
	var results []Result
	for _, sn := range sns {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		done, err := c.findCopy(ctx, sn, existing)
		if err != nil {
			return results, fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
		}
		if done != nil {
			c.prog.Snapshot(sn, true)
			copies[sn.ID] = done.ID
			results = append(results, Result{Source: sn, Copy: done, Skipped: true})
			continue
		}
		c.prog.Snapshot(sn, false)
		res, err := c.snapshot(ctx, sn, copies)
		if err != nil {
			return results, fmt.Errorf("copy snapshot %s: %w", sn.ID.Str(), err)
		}
		copies[sn.ID] = res.Copy.ID
		existing = append(existing, res.Copy)
		results = append(results, res)
	}
	return results, nil
}

type copier struct {
	src, dst *repo.Repository
	workers  int
	prog     Progress

	// loads bounds the blobs being copied at once (and so the memory
	// they take); walks bounds the subtrees copied concurrently.
	loads, walks chan struct{}

	mu    sync.Mutex
	data  map[repo.ID]repo.ID // source data blob -> destination data blob
	trees map[repo.ID]repo.ID // source tree -> destination tree, both stored

	stored, known atomic.Int64
	bytes         atomic.Int64
}

// snapshot copies the blobs of sn, flushes dst and saves the copy.
func (c *copier) snapshot(ctx context.Context, sn *repo.Snapshot, copies map[repo.ID]repo.ID) (Result, error) {
	c.stored.Store(0)
	c.known.Store(0)
	c.bytes.Store(0)
	cp := *sn
	cp.ID = repo.ID{}
	cp.Parent = nil
	if sn.Parent != nil {
		if id, ok := copies[*sn.Parent]; ok {
			cp.Parent = &id
		}
	}
	if sn.Tree != nil {
		id, err := c.tree(ctx, *sn.Tree)
		if err != nil {
			return Result{}, err
		}
		cp.Tree = &id
	}
	cp.Disks = make([]repo.Disk, len(sn.Disks))
	for i, d := range sn.Disks {
		lists, err := c.disk(ctx, &d)
		if err != nil {
			return Result{}, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		d.ChunkLists = lists
		cp.Disks[i] = d
	}
	if len(cp.Disks) == 0 {
		cp.Disks = nil
	}
	if err := c.dst.Flush(ctx); err != nil {
		return Result{}, fmt.Errorf("flush: %w", err)
	}
	if _, err := c.dst.SaveSnapshot(ctx, &cp); err != nil {
		return Result{}, fmt.Errorf("save snapshot: %w", err)
	}
	return Result{
		Source: sn, Copy: &cp,
		BlobsStored: int(c.stored.Load()), BlobsKnown: int(c.known.Load()), BytesStored: c.bytes.Load(),
	}, nil
}

// tree copies the tree id and everything below it and returns its id in
// dst.
func (c *copier) tree(ctx context.Context, id repo.ID) (repo.ID, error) {
	if nid, ok := c.mapped(c.trees, id); ok {
		return nid, nil
	}
	t, err := c.src.LoadTree(ctx, id)
	if err != nil {
		return repo.ID{}, fmt.Errorf("load tree %s: %w", id.Str(), err)
	}
	var chunks []repo.ID
	for _, n := range t.Nodes {
		for _, ch := range n.Content {
			if ch.ID != nil {
				chunks = append(chunks, *ch.ID)
			}
		}
	}
	mapped, err := c.blobs(ctx, chunks)
	if err != nil {
		return repo.ID{}, err
	}
	subs, err := c.subtrees(ctx, t)
	if err != nil {
		return repo.ID{}, err
	}
	out := &repo.Tree{Nodes: make([]*repo.Node, len(t.Nodes))}
	for i, n := range t.Nodes {
		nn := *n
		if n.Content != nil {
			nn.Content = make([]repo.Chunk, len(n.Content))
			for j, ch := range n.Content {
				nn.Content[j] = repo.Chunk{Len: ch.Len}
				if ch.ID != nil {
					nid := mapped[0]
					mapped = mapped[1:]
					nn.Content[j].ID = &nid
				}
			}
		}
		if n.Subtree != nil {
			nn.Subtree = &subs[i]
		}
		out.Nodes[i] = &nn
	}
	nid, err := c.dst.SaveTree(ctx, out)
	if err != nil {
		return repo.ID{}, fmt.Errorf("save tree: %w", err)
	}
	c.remember(c.trees, id, nid)
	return nid, nil
}

// subtrees copies the subtrees of t, concurrently while workers are free
// (else in this goroutine), and returns their new ids by node index.
func (c *copier) subtrees(ctx context.Context, t *repo.Tree) ([]repo.ID, error) {
	subs := make([]repo.ID, len(t.Nodes))
	var g errgroup.Group
	for i, n := range t.Nodes {
		if n.Subtree == nil {
			continue
		}
		select {
		case c.walks <- struct{}{}:
			g.Go(func() error {
				defer func() { <-c.walks }()
				var err error
				subs[i], err = c.tree(ctx, *n.Subtree)
				return err
			})
		default:
			var err error
			if subs[i], err = c.tree(ctx, *n.Subtree); err != nil {
				g.Wait()
				return nil, err
			}
		}
	}
	return subs, g.Wait()
}

// disk copies a disk's chunks and returns its chunk lists in dst, in
// blobs of repo.MaxChunkListRecords entries like a backup writes them.
func (c *copier) disk(ctx context.Context, d *repo.Disk) ([]repo.ID, error) {
	var lists []repo.ID
	batch := make([]repo.DiskChunk, 0, repo.MaxChunkListRecords)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ids := make([]repo.ID, len(batch))
		for i, ch := range batch {
			ids[i] = ch.ID
		}
		mapped, err := c.blobs(ctx, ids)
		if err != nil {
			return err
		}
		for i := range batch {
			batch[i].ID = mapped[i]
		}
		l, err := c.dst.SaveChunkList(ctx, batch)
		if err != nil {
			return fmt.Errorf("save chunk list: %w", err)
		}
		lists = append(lists, l...)
		batch = batch[:0]
		return nil
	}
	err := c.src.LoadChunkList(ctx, d.ChunkLists, func(ch repo.DiskChunk) error {
		batch = append(batch, ch)
		if len(batch) == repo.MaxChunkListRecords {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return lists, err
}

// blobs copies the data blobs ids (in parallel) and returns their ids in
// dst, in the same order.
func (c *copier) blobs(ctx context.Context, ids []repo.ID) ([]repo.ID, error) {
	out := make([]repo.ID, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.workers)
	pending := make(map[repo.ID][]int)
	for i, id := range ids {
		if nid, ok := c.mapped(c.data, id); ok {
			out[i] = nid
			c.known.Add(1)
			continue
		}
		if idx, ok := pending[id]; ok {
			pending[id] = append(idx, i)
			continue
		}
		pending[id] = []int{i}
		g.Go(func() error {
			nid, err := c.blob(gctx, id)
			if err != nil {
				return err
			}
			c.remember(c.data, id, nid)
			out[i] = nid
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, idx := range pending {
		for _, i := range idx[1:] {
			out[i] = out[idx[0]]
		}
	}
	return out, nil
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// blob copies one data blob.
func (c *copier) blob(ctx context.Context, id repo.ID) (repo.ID, error) {
	select {
	case c.loads <- struct{}{}:
	case <-ctx.Done():
		return repo.ID{}, ctx.Err()
	}
	defer func() { <-c.loads }()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	data, err := c.src.LoadBlob(ctx, repo.DataBlob, id, *bp)
	if err != nil {
		return repo.ID{}, fmt.Errorf("load data blob %s: %w", id.Str(), err)
	}
	*bp = data
	nid := c.dst.BlobID(data)
	added := false
	if !c.dst.HasBlob(repo.DataBlob, nid) {
		if added, _, err = c.dst.SaveBlob(ctx, repo.DataBlob, nid, data); err != nil {
			return repo.ID{}, fmt.Errorf("save data blob %s: %w", nid.Str(), err)
		}
	}
	if added {
		c.stored.Add(1)
		c.bytes.Add(int64(len(data)))
	} else {
		c.known.Add(1)
	}
	c.prog.Blob(int64(len(data)), added)
	return nid, nil
}

func (c *copier) mapped(m map[repo.ID]repo.ID, id repo.ID) (repo.ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nid, ok := m[id]
	return nid, ok
}

func (c *copier) remember(m map[repo.ID]repo.ID, id, nid repo.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(m) < maxMapped {
		m[id] = nid
	}
}

type noProgress struct{}

func (noProgress) Snapshot(*repo.Snapshot, bool) {}
func (noProgress) Blob(int64, bool)              {}
