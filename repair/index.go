package repair

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"golang.org/x/sync/errgroup"
)

// Progress receives progress reports; nil means none.
type Progress = repo.Progress

// IndexOptions configure [Index].
type IndexOptions struct {
	// ReadAllPacks reads every pack whole and verifies every blob (decrypt,
	// decompress, id); damaged blobs are left out of the new index.
	ReadAllPacks bool
	// DryRun reads and reports, but writes and removes nothing.
	DryRun   bool
	Progress Progress
}

// DamagedPack is a pack whose header (or, with ReadAllPacks, whose content)
// cannot be read. It is left in place.
type DamagedPack struct {
	ID     repo.ID `json:"id"`
	Size   int64   `json:"size"`
	Reason string  `json:"reason"`
	// KeptBlobs is the number of blobs an old index file placed in the
	// pack that stay indexed in it.
	KeptBlobs int `json:"kept_blobs"`
	// SalvagedBlobs is the number of its blobs that verified and were
	// copied to a new pack, or are already in another one (ReadAllPacks).
	SalvagedBlobs int `json:"salvaged_blobs"`
}

// DamagedBlob is a blob that failed verification (ReadAllPacks) and is left
// out of the new index.
type DamagedBlob struct {
	Type   repo.BlobType `json:"-"`
	ID     repo.ID       `json:"id"`
	Pack   repo.ID       `json:"pack"`
	Reason string        `json:"reason"`
}

// MissingPack is a pack an old index file lists that does not exist.
type MissingPack struct {
	ID    repo.ID `json:"id"`
	Blobs int     `json:"blobs"` // entries dropped from the index
}

// IndexResult reports what [Index] found and did.
type IndexResult struct {
	DryRun bool `json:"dry_run"`
	// PacksRead is the number of packs whose header was read.
	PacksRead int `json:"packs_read"`
	// PacksAdded counts packs with a readable header that no old index
	// file listed.
	PacksAdded int `json:"packs_added"`
	// BlobsIndexed is the number of blob entries in the new index.
	BlobsIndexed int           `json:"blobs_indexed"`
	PacksDamaged []DamagedPack `json:"packs_damaged"`
	PacksMissing []MissingPack `json:"packs_missing"`
	BlobsDamaged []DamagedBlob `json:"blobs_damaged"`
	BytesRead    int64         `json:"bytes_read"` // with ReadAllPacks
	// PacksWritten and BlobsSalvaged count the new packs holding the
	// intact blobs of damaged packs, and those blobs (ReadAllPacks; with
	// DryRun the blobs that would be copied).
	PacksWritten  int             `json:"packs_written"`
	BlobsSalvaged int             `json:"blobs_salvaged"`
	IndexFiles    IndexFileCounts `json:"index_files"`
}

// IndexFileCounts counts index files before and after.
type IndexFileCounts struct {
	Old     int `json:"old"`     // index files that existed (damaged ones included)
	Damaged int `json:"damaged"` // old index files that could not be loaded
	Written int `json:"written"` // new index files (with DryRun: that would be written)
	Removed int `json:"removed"` // old index files removed
}

// packState is what Index learnt about one pack.
type packState struct {
	id     repo.ID
	size   int64
	blobs  []repo.PackedBlob // the entries for the new index, by offset
	hdrErr error             // the header could not be read
	// readErr is set when ReadAllPacks could not read the pack whole.
	readErr error
	// salvage is set when the intact blobs are to move to a new pack;
	// salvaged counts them (ReadAllPacks).
	salvage  bool
	salvaged int
}

// Index rebuilds the index from the pack headers (see the package
// documentation). The caller holds the exclusive lock (a shared one with
// DryRun). Afterwards r's in-memory index is stale: reopen the repository to
// use it further.
//
// Order: the new index files are written first, the last of them
// superseding every index file that existed when Index started; only then
// are the old files removed. An interruption before the last new file leaves
// old and new entries side by side (harmless duplicates); after it, leftover
// old files are ignored by readers and removed by the next run.
func Index(ctx context.Context, r *repo.Repository, opts IndexOptions) (*IndexResult, error) {
	prog := opts.Progress
	if prog == nil {
		prog = repo.NoProgress{}
	}
	res := &IndexResult{DryRun: opts.DryRun, PacksDamaged: []DamagedPack{}, PacksMissing: []MissingPack{}, BlobsDamaged: []DamagedBlob{}}

	// Every index file in the backend is replaced: the loaded ones, the
	// superseded ones left by an interrupted run, and damaged ones.
	oldFiles, err := r.ListFiles(ctx, backend.IndexFile)
	if err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	res.IndexFiles.Old = len(oldFiles)
	res.IndexFiles.Damaged = len(r.IndexErrors())

	packs, err := r.ListPacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	// What the old index says, per pack: kept for packs whose header is
	// unreadable, and to report packs that are gone.
	oldEntries := make(map[repo.ID][]repo.PackedBlob)
	_ = r.EachBlob(func(pb repo.PackedBlob) error {
		oldEntries[pb.Pack] = append(oldEntries[pb.Pack], pb)
		return nil
	})
	for id, blobs := range oldEntries {
		if _, ok := packs[id]; !ok {
			res.PacksMissing = append(res.PacksMissing, MissingPack{ID: id, Blobs: len(blobs)})
		}
	}
	sort.Slice(res.PacksMissing, func(i, j int) bool { return less(res.PacksMissing[i].ID, res.PacksMissing[j].ID) })

	states := make([]*packState, 0, len(packs))
	for id, size := range packs {
		states = append(states, &packState{id: id, size: size})
	}
	sort.Slice(states, func(i, j int) bool { return less(states[i].id, states[j].id) })

	if err := readHeaders(ctx, r, states, prog); err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	for _, st := range states {
		if st.hdrErr != nil {
			st.blobs = append([]repo.PackedBlob(nil), oldEntries[st.id]...)
			sortByOffset(st.blobs)
			continue
		}
		res.PacksRead++
		if _, ok := oldEntries[st.id]; !ok {
			res.PacksAdded++
		}
	}
	if opts.ReadAllPacks {
		salvaged, err := verifyPacks(ctx, r, states, res, opts.DryRun, prog)
		if err != nil {
			return nil, fmt.Errorf("repair index: %w", err)
		}
		states = append(states, salvaged...)
	}
	for _, st := range states {
		if err := errors.Join(st.hdrErr, st.readErr); err != nil {
			res.PacksDamaged = append(res.PacksDamaged, DamagedPack{ID: st.id, Size: st.size, Reason: err.Error(), KeptBlobs: len(st.blobs), SalvagedBlobs: st.salvaged})
		}
		res.BlobsIndexed += len(st.blobs)
	}

	files := indexFiles(states, oldFiles)
	res.IndexFiles.Written = len(files)
	if opts.DryRun {
		return res, nil
	}
	if len(files) == 0 {
		return res, nil // no packs and no index files: nothing to replace
	}

	prog.Phase("write index", len(files))
	written := make(map[repo.ID]bool)
	for _, f := range files {
		id, err := r.SaveIndexFile(ctx, f)
		if err != nil {
			return res, fmt.Errorf("repair index: %w", err)
		}
		written[id] = true
		prog.Done(1)
	}
	// Deleting is safe only while the exclusive lock is ours.
	if err := r.LockErr(); err != nil {
		return res, fmt.Errorf("repair index: %w", err)
	}
	prog.Phase("remove old index files", len(oldFiles))
	for _, id := range oldFiles {
		if written[id] {
			continue
		}
		err := r.Backend().Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()})
		if err != nil && !errors.Is(err, backend.ErrNotExist) {
			return res, fmt.Errorf("repair index: remove index %s: %w", id.Str(), err)
		}
		res.IndexFiles.Removed++
		prog.Done(1)
	}
	return res, nil
}

// readHeaders reads the header of every pack, recording unreadable ones in
// hdrErr.
func readHeaders(ctx context.Context, r *repo.Repository, states []*packState, prog Progress) error {
	prog.Phase("read pack headers", len(states))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, st := range states {
		g.Go(func() error {
			defer prog.Done(1)
			blobs, err := r.LoadPackHeader(gctx, st.id)
			switch {
			case err == nil:
				st.blobs = blobs
			case gctx.Err() != nil:
				return gctx.Err()
			case errors.Is(err, repo.ErrNewerFormat):
				return err
			case errors.Is(err, backend.ErrNotExist):
				// Removed since it was listed: only an interrupted repair or
				// prune removes packs, and both hold the exclusive lock.
				return fmt.Errorf("pack %s vanished while the repository was locked: %w", st.id.Str(), err)
			default:
				st.hdrErr = err
			}
			return nil
		})
	}
	return g.Wait()
}

// verifyPacks reads every pack whole and drops the entries of blobs that do
// not verify; then it salvages (see salvage).
func verifyPacks(ctx context.Context, r *repo.Repository, states []*packState, res *IndexResult, dryRun bool, prog Progress) ([]*packState, error) {
	prog.Phase("read packs", len(states))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, st := range states {
		if len(st.blobs) == 0 {
			prog.Done(1)
			continue
		}
		g.Go(func() error {
			defer prog.Done(1)
			data, err := r.Backend().Load(gctx, backend.Handle{Type: backend.PackFile, Name: st.id.String()}, 0, 0)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				// Its blobs cannot be verified: they stay as they are, and
				// the pack is reported.
				mu.Lock()
				st.readErr = fmt.Errorf("read pack: %w", err)
				mu.Unlock()
				return nil
			}
			var kept []repo.PackedBlob
			var bad []DamagedBlob
			var buf []byte
			for _, pb := range st.blobs {
				end := uint64(pb.Offset) + uint64(pb.Length)
				if end > uint64(len(data)) {
					bad = append(bad, DamagedBlob{Type: pb.Type, ID: pb.ID, Pack: st.id, Reason: "beyond the end of the pack"})
					continue
				}
				out, err := r.OpenBlob(pb, data[pb.Offset:end], buf)
				if err != nil {
					bad = append(bad, DamagedBlob{Type: pb.Type, ID: pb.ID, Pack: st.id, Reason: err.Error()})
					continue
				}
				buf = out
				kept = append(kept, pb)
			}
			st.blobs = kept
			st.salvage = len(kept) > 0 && (len(bad) > 0 || st.hdrErr != nil)
			mu.Lock()
			res.BytesRead += int64(len(data))
			res.BlobsDamaged = append(res.BlobsDamaged, bad...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(res.BlobsDamaged, func(i, j int) bool {
		a, b := res.BlobsDamaged[i], res.BlobsDamaged[j]
		if a.Pack != b.Pack {
			return less(a.Pack, b.Pack)
		}
		return less(a.ID, b.ID)
	})
	return salvage(ctx, r, states, res, dryRun)
}

type blobKey struct {
	t  repo.BlobType
	id repo.ID
}

// salvage copies the intact blobs of each pack that holds damaged ones, or
// whose header cannot be read, unchanged (sealed) into a new pack, which it
// returns; the damaged pack is then indexed with no blobs, and prune
// removes it. A blob that an intact pack (or an earlier salvage, of an
// interrupted run) already holds is not copied again. New packs are stored
// before the index that lists them.
func salvage(ctx context.Context, r *repo.Repository, states []*packState, res *IndexResult, dryRun bool) ([]*packState, error) {
	have := make(map[blobKey]bool)
	for _, st := range states {
		if !st.salvage {
			for _, pb := range st.blobs {
				have[blobKey{pb.Type, pb.ID}] = true
			}
		}
	}
	var out []*packState
	for _, st := range states {
		if !st.salvage {
			continue
		}
		var copyList []repo.PackedBlob
		for _, pb := range st.blobs {
			if k := (blobKey{pb.Type, pb.ID}); !have[k] {
				have[k] = true
				copyList = append(copyList, pb)
			}
		}
		st.salvaged = len(st.blobs)
		st.blobs = nil
		res.BlobsSalvaged += st.salvaged
		if len(copyList) == 0 || dryRun {
			continue
		}
		data, err := r.Backend().Load(ctx, backend.Handle{Type: backend.PackFile, Name: st.id.String()}, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("copy the intact blobs of pack %s: %w", st.id.Str(), err)
		}
		fresh, err := copyBlobs(ctx, r, data, copyList)
		if err != nil {
			return nil, fmt.Errorf("copy the intact blobs of pack %s: %w", st.id.Str(), err)
		}
		res.PacksWritten += len(fresh)
		out = append(out, fresh...)
	}
	return out, nil
}

// copyBlobs stores the verified blobs (sealed, from the pack data) in new
// packs, one per blob type.
func copyBlobs(ctx context.Context, r *repo.Repository, data []byte, blobs []repo.PackedBlob) ([]*packState, error) {
	var out []*packState
	for _, t := range []repo.BlobType{repo.DataBlob, repo.TreeBlob} {
		w := r.NewPackWriter(t)
		for _, pb := range blobs {
			if pb.Type != t {
				continue
			}
			if w.Count() == 0 {
				w.Grow(len(data))
			}
			sealed := data[pb.Offset : pb.Offset+pb.Length]
			// Verified when first read; again, as these bytes were read anew.
			if _, err := r.OpenBlob(pb, sealed, nil); err != nil {
				return nil, fmt.Errorf("%s blob %s: %w", pb.Type, pb.ID.Str(), err)
			}
			if err := w.Add(pb, sealed); err != nil {
				return nil, err
			}
		}
		if w.Count() == 0 {
			continue
		}
		size := w.Size()
		ip, err := w.Finish(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, &packState{id: ip.ID, size: int64(size), blobs: ip.Blobs})
	}
	return out, nil
}

// indexFiles splits the packs into index files of at most about
// repo.MaxIndexFileBlobs blobs; the last one supersedes old. It returns no
// files when there is nothing to index and nothing to replace.
func indexFiles(states []*packState, old []repo.ID) []*repo.IndexFile {
	var files []*repo.IndexFile
	cur, n := &repo.IndexFile{}, 0
	for _, st := range states {
		// A pack whose blobs were all found damaged is still listed, with
		// no blobs: it is known, and nothing in it is to be used (a backup
		// must not index it again as an orphan).
		if len(st.blobs) == 0 && st.hdrErr != nil {
			continue
		}
		if n > 0 && n+len(st.blobs) > repo.MaxIndexFileBlobs {
			files = append(files, cur)
			cur, n = &repo.IndexFile{}, 0
		}
		cur.Packs = append(cur.Packs, repo.IndexPack{ID: st.id, Blobs: st.blobs})
		n += len(st.blobs)
	}
	if len(cur.Packs) > 0 || len(old) > 0 {
		files = append(files, cur)
	}
	if len(files) > 0 {
		// Only the last file supersedes: a crash before it is written
		// leaves the old files in force beside an incomplete new set.
		files[len(files)-1].Supersedes = old
	}
	return files
}

func sortByOffset(blobs []repo.PackedBlob) {
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Offset < blobs[j].Offset })
}

func less(a, b repo.ID) bool { return string(a[:]) < string(b[:]) }
