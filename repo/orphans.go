package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// IndexOrphanPacks finds packs that no index file lists (left by a backup
// that was interrupted before it wrote their index), reads their headers and
// writes an index file for those whose header is intact, so their blobs are
// used instead of being stored again. It returns how many packs it indexed
// and how many it skipped because their header could not be read (check
// reports those).
//
// It is safe while other processes save: a pack that their own index file
// lists as well is indexed twice, which is harmless.
func (r *Repository) IndexOrphanPacks(ctx context.Context) (indexed, skipped int, err error) {
	packs, err := r.ListPacks(ctx)
	if err != nil {
		return 0, 0, err
	}
	known := make(map[ID]bool)
	for _, id := range r.IndexedPacks() {
		known[id] = true
	}
	var found []IndexPack
	for id := range packs {
		if known[id] {
			continue
		}
		blobs, err := r.LoadPackHeader(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return 0, 0, ctx.Err()
			}
			if errors.Is(err, ErrNewerFormat) {
				return 0, 0, err
			}
			skipped++
			continue
		}
		found = append(found, IndexPack{ID: id, Blobs: blobs})
	}
	if len(found) == 0 {
		return 0, skipped, nil
	}
	iid, err := r.SaveIndexFile(ctx, &IndexFile{Packs: found})
	if err != nil {
		return 0, skipped, fmt.Errorf("index orphan packs: %w", err)
	}
	r.imu.Lock()
	r.indexFiles = append(r.indexFiles, iid)
	r.imu.Unlock()
	for _, p := range found {
		r.idx.addPack(p)
	}
	return len(found), skipped, nil
}

// maxIndexFileBlobs bounds the blobs per index file written by CompactIndex.
const maxIndexFileBlobs = 200000

// CompactIndex replaces the index files loaded by Open with as few files as
// possible (each at most about 200000 blobs) that supersede them, then
// removes the old files. Opening a repository reads every index file, so
// this keeps opening fast after many backups, each of which writes several
// small index files. It returns the number of files removed. Run it under an
// exclusive lock: another process that is opening the repository at the
// moment the old files are removed would miss entries.
func (r *Repository) CompactIndex(ctx context.Context) (int, error) {
	if err := r.Flush(ctx); err != nil {
		return 0, err
	}
	r.imu.Lock()
	old := append([]ID(nil), r.indexFiles...)
	r.imu.Unlock()
	if len(old) < 2 {
		return 0, nil
	}
	byPack := make(map[ID][]PackedBlob)
	var order []ID
	_ = r.EachBlob(func(pb PackedBlob) error {
		if _, ok := byPack[pb.Pack]; !ok {
			order = append(order, pb.Pack)
		}
		byPack[pb.Pack] = append(byPack[pb.Pack], pb)
		return nil
	})
	var files []*IndexFile
	cur := &IndexFile{}
	n := 0
	for _, pack := range order {
		blobs := byPack[pack]
		sortByOffset(blobs)
		if n > 0 && n+len(blobs) > maxIndexFileBlobs {
			files = append(files, cur)
			cur, n = &IndexFile{}, 0
		}
		cur.Packs = append(cur.Packs, IndexPack{ID: pack, Blobs: blobs})
		n += len(blobs)
	}
	files = append(files, cur)
	// Only the last new file supersedes the old ones: a crash before it
	// leaves old and new files side by side (duplicate entries are
	// harmless), never old files hidden by an incomplete new set.
	files[len(files)-1].Supersedes = old
	var newIDs []ID
	for _, f := range files {
		id, err := r.SaveIndexFile(ctx, f)
		if err != nil {
			return 0, fmt.Errorf("compact index: %w", err)
		}
		newIDs = append(newIDs, id)
	}
	removed := 0
	for _, id := range old {
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return removed, fmt.Errorf("compact index: remove %s: %w", id.Str(), err)
		}
		removed++
	}
	r.imu.Lock()
	r.indexFiles = newIDs
	r.imu.Unlock()
	return removed, nil
}

func sortByOffset(blobs []PackedBlob) {
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Offset < blobs[j].Offset })
}
