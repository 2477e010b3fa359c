package prune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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

// loadedRange is a run of a pack's bytes holding blobs to copy, read and
// verified by a reader.
type loadedRange struct {
	data  []byte // the pack's bytes from offset base
	base  uint32
	blobs []repo.PackedBlob
	last  bool // the last range of its pack
}

// Repack reads ranges of at most maxRange bytes (or one larger blob),
// merging blobs separated by at most maxGap unused bytes into one read.
const (
	maxRange = 4 << 20
	maxGap   = 64 << 10
)

// repack copies the used blobs of the packs to repack into new packs: two
// goroutines read and verify the used blobs of packs range by range, one
// assembles new packs per blob type. Only the used blobs are read and each
// is verified (decrypted and checked against its id) before it is copied,
// so a damaged blob is never carried into a new pack; memory holds the new
// packs being assembled and a few ranges, whatever the size of the packs.
func (p *Plan) repack(ctx context.Context, res *Result) ([]repo.IndexPack, error) {
	if len(p.Repack) == 0 {
		return nil, nil
	}
	p.prog.Phase("repack", len(p.Repack))
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan Pack)
	loaded := make(chan loadedRange)
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
	// Range buffers are recycled: two readers and the assembler hold at most
	// three ranges.
	const readersN = 2
	free := make(chan []byte, readersN+1)
	readers, rctx := errgroup.WithContext(gctx)
	for range readersN {
		readers.Go(func() error {
			var plain []byte
			for pk := range queue {
				blobs := slices.Clone(p.copyFrom[pk.ID])
				slices.SortFunc(blobs, func(a, b repo.PackedBlob) int { return cmp.Compare(a.Offset, b.Offset) })
				for len(blobs) > 0 {
					n, end := 1, uint64(blobs[0].Offset)+uint64(blobs[0].Length)
					for n < len(blobs) {
						next := blobs[n]
						nend := uint64(next.Offset) + uint64(next.Length)
						if uint64(next.Offset) > end+maxGap || nend-uint64(blobs[0].Offset) > maxRange {
							break
						}
						end = max(end, nend)
						n++
					}
					var buf []byte
					select {
					case buf = <-free:
					default:
					}
					lr := loadedRange{base: blobs[0].Offset, blobs: blobs[:n], last: n == len(blobs)}
					data, err := p.loadRange(rctx, pk, int64(lr.base), int64(end-uint64(lr.base)), buf)
					if err != nil {
						return fmt.Errorf("load pack %s: %w", pk.ID.Str(), err)
					}
					lr.data = data
					// Verify before copying: a damaged blob must not be
					// carried into a new pack as if it were good.
					for _, pb := range lr.blobs {
						sealed := data[pb.Offset-lr.base : pb.Offset-lr.base+pb.Length]
						if plain, err = p.r.OpenBlob(pb, sealed, plain); err != nil {
							return fmt.Errorf("pack %s: %s blob %s: %w; run check", pk.ID.Str(), pb.Type, pb.ID.Str(), err)
						}
					}
					select {
					case loaded <- lr:
					case <-rctx.Done():
						return rctx.Err()
					}
					blobs = blobs[n:]
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
				if err := w.Add(pb, lp.data[pb.Offset-lp.base:pb.Offset-lp.base+pb.Length]); err != nil {
					return err
				}
				res.BlobsCopied++
			}
			select {
			case free <- lp.data:
			default:
			}
			if lp.last {
				p.prog.Done(1)
			}
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

// loadRange reads length bytes of pack pk from offset, into buf when the
// backend can read into a caller's buffer.
func (p *Plan) loadRange(ctx context.Context, pk Pack, offset, length int64, buf []byte) ([]byte, error) {
	h := backend.Handle{Type: backend.PackFile, Name: pk.ID.String()}
	type loaderInto interface {
		LoadInto(ctx context.Context, h backend.Handle, offset int64, buf []byte) error
	}
	if li, ok := p.r.Backend().(loaderInto); ok && length > 0 {
		if int64(cap(buf)) < length {
			buf = make([]byte, length)
		}
		buf = buf[:length]
		if err := li.LoadInto(ctx, h, offset, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	data, err := p.r.Backend().Load(ctx, h, offset, length)
	if err == nil && int64(len(data)) != length {
		err = fmt.Errorf("read %d bytes at offset %d, want %d", len(data), offset, length)
	}
	return data, err
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
