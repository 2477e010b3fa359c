package prune

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"golang.org/x/sync/errgroup"
)

// Result reports what Execute did.
type Result struct {
	PacksWritten       int   `json:"packs_written"`
	PacksDeleted       int   `json:"packs_deleted"`
	IndexFilesWritten  int   `json:"index_files_written"`
	IndexFilesRemoved  int   `json:"index_files_removed"`
	BytesWritten       int64 `json:"bytes_written"`
	BytesDeleted       int64 `json:"bytes_deleted"`
	BlobsCopied        int   `json:"blobs_copied"`
	SnapshotsReachable int   `json:"snapshots"`

	// HistoryFilesMerged history files were merged into one file of
	// HistoryRecords records; HistoryFilesDamaged could not be read and
	// were left alone (check reports them).
	HistoryFilesMerged  int   `json:"history_files_merged"`
	HistoryRecords      int   `json:"history_records"`
	HistoryFilesDamaged int   `json:"history_files_damaged,omitempty"`
	TempFilesRemoved    int   `json:"temp_files_removed"`
	TempBytesRemoved    int64 `json:"temp_bytes_removed"`
}

// Execute carries out the plan (see the package documentation for the
// order). It stops at the first error; what was done until then leaves a
// repository that check accepts and that a new plan completes. Afterwards
// r's in-memory index is stale: reopen the repository to use it further.
func (p *Plan) Execute(ctx context.Context) (*Result, error) {
	p.executeLock.Lock()
	defer p.executeLock.Unlock()
	if p.executed {
		return nil, errExecuted
	}
	p.executed = true
	res := &Result{SnapshotsReachable: p.Snapshots}
	if !p.noOp {
		if err := p.prunePacks(ctx, res); err != nil {
			return res, err
		}
	}
	// 5. History files and temporary files, which no snapshot needs.
	if err := p.compactHistory(ctx, res); err != nil {
		return res, fmt.Errorf("prune: merge history files: %w", err)
	}
	if err := p.removeTemp(ctx, res); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	return res, nil
}

// prunePacks carries out steps 1 to 4 of the package documentation.
func (p *Plan) prunePacks(ctx context.Context, res *Result) error {
	// 1. New packs with the used blobs of the packs to repack.
	newPacks, err := p.repack(ctx, res)
	if err != nil {
		return fmt.Errorf("prune: repack: %w", err)
	}

	// 2. The new index: every kept pack with all its entries (a kept pack's
	// unused blobs stay indexed, so index and pack header agree), and the
	// new packs. Only the last file supersedes the old ones, so a crash in
	// between leaves old and new entries side by side, never an incomplete
	// index.
	var packs []repo.IndexPack
	for _, id := range p.keepPacks {
		blobs := append([]repo.PackedBlob(nil), p.byPack[id]...)
		sort.Slice(blobs, func(i, j int) bool { return blobs[i].Offset < blobs[j].Offset })
		packs = append(packs, repo.IndexPack{ID: id, Blobs: blobs})
	}
	packs = append(packs, newPacks...)
	var files []*repo.IndexFile
	cur, n := &repo.IndexFile{}, 0
	for _, ip := range packs {
		if n > 0 && n+len(ip.Blobs) > repo.MaxIndexFileBlobs {
			files = append(files, cur)
			cur, n = &repo.IndexFile{}, 0
		}
		cur.Packs = append(cur.Packs, ip)
		n += len(ip.Blobs)
	}
	files = append(files, cur)
	files[len(files)-1].Supersedes = p.indexFiles
	p.prog.Phase("write index", len(files))
	written := make(map[repo.ID]bool)
	for _, f := range files {
		id, err := p.r.SaveIndexFile(ctx, f)
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		written[id] = true
		res.IndexFilesWritten++
		p.prog.Done(1)
	}

	// Deleting is safe only while the exclusive lock is ours.
	if err := p.r.LockErr(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}

	// 3. The old index files.
	p.prog.Phase("remove old index files", len(p.indexFiles))
	for _, id := range p.indexFiles {
		if written[id] {
			continue // an identical file was written again
		}
		if err := p.r.Backend().Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return fmt.Errorf("prune: remove index %s: %w", id.Str(), err)
		}
		res.IndexFilesRemoved++
		p.prog.Done(1)
	}

	// 4. The packs nothing references any more.
	if err := p.r.LockErr(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	var remove []Pack
	remove = append(remove, p.Delete...)
	remove = append(remove, p.Repack...)
	p.prog.Phase("remove packs", len(remove))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	deleted := make([]bool, len(remove))
	for i, pk := range remove {
		g.Go(func() error {
			err := p.r.Backend().Remove(gctx, backend.Handle{Type: backend.PackFile, Name: pk.ID.String()})
			if err != nil && !errors.Is(err, backend.ErrNotExist) {
				return fmt.Errorf("remove pack %s: %w", pk.ID.Str(), err)
			}
			deleted[i] = true
			p.prog.Done(1)
			return nil
		})
	}
	err = g.Wait()
	for i, d := range deleted {
		if d {
			res.PacksDeleted++
			res.BytesDeleted += remove[i].Size
		}
	}
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	return nil
}

// loadedPack is a pack read whole with the blobs to copy out of it.
type loadedPack struct {
	data  []byte
	blobs []repo.PackedBlob
}

// repack copies the used blobs of the packs to repack into new packs: two
// goroutines read and verify packs, one assembles new packs per blob type.
func (p *Plan) repack(ctx context.Context, res *Result) ([]repo.IndexPack, error) {
	if len(p.Repack) == 0 {
		return nil, nil
	}
	p.prog.Phase("repack", len(p.Repack))
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan Pack)
	loaded := make(chan loadedPack)
	g.Go(func() error {
		defer close(queue)
		for _, pk := range p.Repack {
			select {
			case queue <- pk:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	readers, rctx := errgroup.WithContext(gctx)
	for range 2 {
		readers.Go(func() error {
			var plain []byte
			for pk := range queue {
				data, err := p.r.Backend().Load(rctx, backend.Handle{Type: backend.PackFile, Name: pk.ID.String()}, 0, 0)
				if err != nil {
					return fmt.Errorf("load pack %s: %w", pk.ID.Str(), err)
				}
				if got := repo.FileID(data); got != pk.ID {
					return fmt.Errorf("pack %s is damaged (content hash %s); run check", pk.ID.Str(), got.Str())
				}
				blobs := p.copyFrom[pk.ID]
				for _, pb := range blobs {
					end := uint64(pb.Offset) + uint64(pb.Length)
					if end > uint64(len(data)) {
						return fmt.Errorf("pack %s: blob %s beyond the end of the pack; run check", pk.ID.Str(), pb.ID.Str())
					}
					// Verify before copying: a damaged blob must not be
					// carried into a new pack as if it were good.
					if plain, err = p.r.OpenBlob(pb, data[pb.Offset:end], plain); err != nil {
						return fmt.Errorf("pack %s: %s blob %s: %w; run check", pk.ID.Str(), pb.Type, pb.ID.Str(), err)
					}
				}
				select {
				case loaded <- loadedPack{data: data, blobs: blobs}:
				case <-rctx.Done():
					return rctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		err := readers.Wait()
		close(loaded)
		return err
	})

	var newPacks []repo.IndexPack
	writers := map[repo.BlobType]*repo.PackWriter{}
	// left is what remains to copy per blob type, so that a writer's buffer
	// is sized to its pack rather than always to a full one.
	left := map[repo.BlobType]int{}
	for _, pk := range p.Repack {
		for _, pb := range p.copyFrom[pk.ID] {
			left[pb.Type] += int(pb.Length)
		}
	}
	const headerRoom = 64 << 10
	finish := func(w *repo.PackWriter) error {
		size := w.Size()
		ip, err := w.Finish(gctx)
		if err != nil {
			return err
		}
		newPacks = append(newPacks, ip)
		res.PacksWritten++
		res.BytesWritten += int64(size)
		return nil
	}
	g.Go(func() error {
		for lp := range loaded {
			for _, pb := range lp.blobs {
				w := writers[pb.Type]
				if w == nil {
					w = p.r.NewPackWriter(pb.Type)
					writers[pb.Type] = w
				}
				if w.Size() > 0 && w.Size()+int(pb.Length) > repo.PackSize {
					if err := finish(w); err != nil {
						return err
					}
				}
				if w.Count() == 0 {
					w.Grow(min(left[pb.Type], repo.PackSize+int(pb.Length)) + headerRoom)
				}
				left[pb.Type] -= int(pb.Length)
				if err := w.Add(pb, lp.data[pb.Offset:pb.Offset+pb.Length]); err != nil {
					return err
				}
				res.BlobsCopied++
			}
			p.prog.Done(1)
		}
		if gctx.Err() != nil {
			return gctx.Err()
		}
		for _, t := range []repo.BlobType{repo.DataBlob, repo.TreeBlob} {
			if w := writers[t]; w != nil && w.Count() > 0 {
				if err := finish(w); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return newPacks, nil
}

// Run plans and executes a prune of r. The caller holds the exclusive lock.
func Run(ctx context.Context, r *repo.Repository, opts Options) (*Plan, *Result, error) {
	p, err := NewPlan(ctx, r, opts)
	if err != nil {
		return nil, nil, err
	}
	res, err := p.Execute(ctx)
	return p, res, err
}
