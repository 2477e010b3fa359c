package restore

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
)

// DiskImage is a disk of a snapshot opened for reading with random access:
// a vmdisk.Image whose bytes come from the repository. Chunk lists and
// blobs are loaded on demand and kept in small caches, so reading a
// partition table or a file system superblock of a large disk loads little.
// It is safe for concurrent use.
type DiskImage struct {
	ctx context.Context
	r   Repo
	d   *repo.Disk

	mu      sync.Mutex
	lists   []listInfo
	listLRU []int // indexes of lists with chunks loaded, most recent last
	blobs   map[repo.ID]*[]byte
	blobLRU []repo.ID
	extents []vmdisk.Extent
}

type listInfo struct {
	known  bool
	first  int64 // offset of the first chunk; MaxInt64 for an empty list
	chunks []repo.DiskChunk
}

const (
	maxCachedLists = 4
	maxCachedBlobs = 16
)

// DiskReader opens the disk d of a snapshot for reading. ctx is used for
// every repository access made by the returned image's methods.
func DiskReader(ctx context.Context, r Repo, d *repo.Disk) *DiskImage {
	return &DiskImage{ctx: ctx, r: r, d: d, lists: make([]listInfo, len(d.ChunkLists)), blobs: make(map[repo.ID]*[]byte)}
}

var _ vmdisk.Image = (*DiskImage)(nil)

// Size is the disk's virtual size.
func (di *DiskImage) Size() int64 { return di.d.Size }

// SectorSize is the disk's logical sector size.
func (di *DiskImage) SectorSize() int {
	if di.d.SectorSize <= 0 {
		return 512
	}
	return di.d.SectorSize
}

// Info names the image: format "snapshot", the source format as variant.
func (di *DiskImage) Info() vmdisk.Info {
	return vmdisk.Info{Format: "snapshot", Variant: di.d.Format}
}

// Close drops the caches.
func (di *DiskImage) Close() error {
	di.mu.Lock()
	defer di.mu.Unlock()
	for _, p := range di.blobs {
		putBuf(p)
	}
	di.blobs = make(map[repo.ID]*[]byte)
	di.blobLRU = nil
	for i := range di.lists {
		di.lists[i].chunks = nil
	}
	di.listLRU = nil
	return nil
}

// Extents returns the ranges covered by chunks, coalesced. It reads the
// whole chunk list once.
func (di *DiskImage) Extents() ([]vmdisk.Extent, error) {
	di.mu.Lock()
	if di.extents != nil {
		defer di.mu.Unlock()
		return append([]vmdisk.Extent(nil), di.extents...), nil
	}
	di.mu.Unlock()
	ext := []vmdisk.Extent{}
	err := chunkGen(di.r, di.d, 0, di.d.Size)(di.ctx, func(c repo.DiskChunk) error {
		off := int64(c.Offset)
		if n := len(ext); n > 0 && ext[n-1].End() == off {
			ext[n-1].Length += int64(c.Length)
		} else {
			ext = append(ext, vmdisk.Extent{Offset: off, Length: int64(c.Length)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	di.mu.Lock()
	di.extents = ext
	di.mu.Unlock()
	return append([]vmdisk.Extent(nil), ext...), nil
}

// list returns the chunks of chunk-list blob k. Called with mu held.
func (di *DiskImage) list(k int) ([]repo.DiskChunk, error) {
	li := &di.lists[k]
	if li.chunks != nil {
		for i, v := range di.listLRU {
			if v == k {
				di.listLRU = append(append(di.listLRU[:i:i], di.listLRU[i+1:]...), k)
				break
			}
		}
		return li.chunks, nil
	}
	chunks := []repo.DiskChunk{}
	var prev int64
	err := di.r.LoadChunkList(di.ctx, di.d.ChunkLists[k:k+1], func(c repo.DiskChunk) error {
		if c.Offset > math.MaxInt64-math.MaxUint32 || int64(c.Offset) < prev || c.Length == 0 || int64(c.Offset)+int64(c.Length) > di.d.Size {
			return fmt.Errorf("chunk list entry at offset %d (%d bytes) out of order or beyond the disk", c.Offset, c.Length)
		}
		prev = int64(c.Offset) + int64(c.Length)
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load chunk list %s of disk %s: %w", di.d.ChunkLists[k].Str(), di.d.Name, err)
	}
	li.known = true
	li.first = math.MaxInt64
	if len(chunks) > 0 {
		li.first = int64(chunks[0].Offset)
	}
	li.chunks = chunks
	di.listLRU = append(di.listLRU, k)
	if len(di.listLRU) > maxCachedLists {
		di.lists[di.listLRU[0]].chunks = nil
		di.listLRU = di.listLRU[1:]
	}
	return chunks, nil
}

func (di *DiskImage) first(k int) (int64, error) {
	if !di.lists[k].known {
		if _, err := di.list(k); err != nil {
			return 0, err
		}
	}
	return di.lists[k].first, nil
}

// locate finds the chunk containing pos (ok set), or else the offset of the
// next chunk after pos (the disk size when there is none).
func (di *DiskImage) locate(pos int64) (c repo.DiskChunk, ok bool, next int64, err error) {
	di.mu.Lock()
	defer di.mu.Unlock()
	// The last list whose first chunk starts at or before pos.
	lo, hi := 0, len(di.lists) // answer in [lo-1, hi)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		f, err := di.first(mid)
		if err != nil {
			return c, false, 0, err
		}
		if f <= pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	k := lo - 1
	next = di.d.Size
	if k >= 0 {
		chunks, err := di.list(k)
		if err != nil {
			return c, false, 0, err
		}
		i := sort.Search(len(chunks), func(i int) bool { return int64(chunks[i].Offset) > pos }) - 1
		if i >= 0 && pos < int64(chunks[i].Offset)+int64(chunks[i].Length) {
			return chunks[i], true, 0, nil
		}
		if i+1 < len(chunks) {
			return c, false, int64(chunks[i+1].Offset), nil
		}
	}
	for j := k + 1; j < len(di.lists); j++ {
		f, err := di.first(j)
		if err != nil {
			return c, false, 0, err
		}
		if f != math.MaxInt64 {
			return c, false, min(f, di.d.Size), nil
		}
	}
	return c, false, next, nil
}

func (di *DiskImage) blob(c repo.DiskChunk) ([]byte, error) {
	di.mu.Lock()
	if p, ok := di.blobs[c.ID]; ok {
		di.mu.Unlock()
		return *p, nil
	}
	di.mu.Unlock()
	p, err := loadBlob(di.ctx, di.r, c.ID, int(c.Length))
	if err != nil {
		return nil, fmt.Errorf("disk %s: load blob %s at offset %d: %w", di.d.Name, c.ID.Str(), c.Offset, err)
	}
	di.mu.Lock()
	defer di.mu.Unlock()
	if q, ok := di.blobs[c.ID]; ok {
		putBuf(p)
		return *q, nil
	}
	di.blobs[c.ID] = p
	di.blobLRU = append(di.blobLRU, c.ID)
	if len(di.blobLRU) > maxCachedBlobs {
		// Evicted buffers are left to the garbage collector: a
		// concurrent reader may still be copying from them.
		delete(di.blobs, di.blobLRU[0])
		di.blobLRU = di.blobLRU[1:]
	}
	return *p, nil
}

// ReadAt reads the disk's bytes at off; holes read as zeros.
func (di *DiskImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("disk %s: negative offset %d", di.d.Name, off)
	}
	if off >= di.d.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), di.d.Size-off))
	done := 0
	for done < n {
		pos := off + int64(done)
		c, ok, next, err := di.locate(pos)
		if err != nil {
			return done, err
		}
		if !ok {
			if next <= pos {
				return done, fmt.Errorf("disk %s: chunk lists out of order near offset %d", di.d.Name, pos)
			}
			k := int(min(next-pos, int64(n-done)))
			clear(p[done : done+k])
			done += k
			continue
		}
		b, err := di.blob(c)
		if err != nil {
			return done, err
		}
		done += copy(p[done:n], b[pos-int64(c.Offset):])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
