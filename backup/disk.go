package backup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/chunk"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
)

// chunkListBatch is the number of DiskChunk records per SaveChunkList
// call: one chunk-list blob each.
const chunkListBatch = repo.MaxChunkListRecords

// diskReadBufs is the number of read buffers in flight per disk.
const diskReadBufs = 8

func (b *run) disks(srcs []DiskSource) ([]repo.Disk, error) {
	out := make([]repo.Disk, 0, len(srcs))
	names := map[string]bool{}
	for _, src := range srcs {
		d, err := b.disk(src)
		if err != nil {
			return nil, err
		}
		if names[d.Name] {
			return nil, fmt.Errorf("backup: two disks named %q (choose names)", d.Name)
		}
		names[d.Name] = true
		out = append(out, d)
	}
	return out, nil
}

// parentDisk returns the parent snapshot's disk called name.
func (b *run) parentDisk(name string) *repo.Disk {
	if b.opts.Parent == nil {
		return nil
	}
	for i := range b.opts.Parent.Disks {
		if d := &b.opts.Parent.Disks[i]; d.Name == name {
			return d
		}
	}
	return nil
}

// disk backs up one disk.
func (b *run) disk(src DiskSource) (repo.Disk, error) {
	path := src.Path
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	}
	name := src.Name
	if name == "" {
		name = filepath.Base(path)
	}
	if name == "" || name == "." || name == "/" {
		return repo.Disk{}, fmt.Errorf("backup: disk %q needs a name", src.Path)
	}
	b.setCurrent(path)
	b.filesTotal.Add(1)
	defer b.filesDone.Add(1)
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return repo.Disk{}, fmt.Errorf("backup: disk %s: %w", path, err)
		}
	}

	// Open first (headers only): the files of a backing chain or of split
	// extents are only known then, and all of them identify the source.
	img := src.Image
	if img == nil {
		var err error
		img, err = vmdisk.Open(path, src.Format, vmdisk.OpenOptions{Force: b.opts.Force})
		if err != nil {
			return repo.Disk{}, fmt.Errorf("open disk: %w", err)
		}
		defer img.Close()
	}
	info := img.Info()
	files := info.Files
	if len(files) == 0 && path != "" {
		files = []string{path}
	}
	before, isFile := identify(files)

	// An image in use (read with --force) is being written: its mtime
	// proves nothing, so it is always read again.
	if pd := b.parentDisk(name); pd != nil && isFile && !info.InUse && pd.SourceInode != 0 && pd.Format == info.Format &&
		pd.SourceSize == before.size && pd.SourceMtime.Equal(before.mtime) && pd.SourceInode == before.inode &&
		b.listsIndexed(pd.ChunkLists) {
		d := *pd
		d.Source = path
		d.ChunkLists = append([]repo.ID(nil), pd.ChunkLists...)
		b.bytesTotal.Add(uint64(d.Size))
		b.bytesDone.Add(uint64(d.Size))
		b.sum.TotalBytesProcessed += uint64(d.Size)
		return d, nil
	}

	d := repo.Disk{
		Name:            name,
		Source:          path,
		Format:          info.Format,
		Size:            img.Size(),
		SectorSize:      img.SectorSize(),
		CrashConsistent: info.InUse,
	}
	if isFile {
		d.SourceSize = before.size
		d.SourceMtime = before.mtime
		d.SourceInode = before.inode
	}
	b.bytesTotal.Add(uint64(d.Size))

	if err := b.readDisk(img, &d); err != nil {
		return repo.Disk{}, err
	}
	b.sum.TotalBytesProcessed += uint64(d.Size)

	if isFile {
		if after, ok := identify(files); !ok || after.size != before.size || !after.mtime.Equal(before.mtime) {
			d.ChangedDuringRead = true
			if b.opts.Warn != nil {
				b.opts.Warn(path, fmt.Errorf("disk changed while it was read; the backup may be inconsistent"))
			}
		}
	}
	return d, nil
}

// sourceID identifies the files of a disk image: the sum of their sizes,
// the newest mtime, and the inode of the first (the file opened).
type sourceID struct {
	size  int64
	mtime time.Time
	inode uint64
}

// identify returns the identity of an image's files; ok is false when one
// of them is not a regular file (a block device) or cannot be read.
func identify(files []string) (id sourceID, ok bool) {
	if len(files) == 0 {
		return id, false
	}
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil || !fi.Mode().IsRegular() {
			return sourceID{}, false
		}
		id.size += fi.Size()
		if fi.ModTime().After(id.mtime) {
			id.mtime = fi.ModTime()
		}
		if i == 0 {
			id.inode = inodeOf(fi)
		}
	}
	return id, true
}

// diskBlock is a range of the disk passed from the reader to the digest
// and chunking goroutines: read bytes in buf, or zeros known zero.
type diskBlock struct {
	buf   *readBuf
	n     int
	zeros int64
}

type readBuf struct {
	data []byte
	refs atomic.Int32
	free chan *readBuf
}

func (r *readBuf) release() {
	if r.refs.Add(-1) == 0 {
		r.free <- r
	}
}

// readDisk reads img, computing the digest and the chunk list into d.
func (b *run) readDisk(img vmdisk.Image, d *repo.Disk) error {
	extents, err := img.Extents()
	if err != nil {
		return fmt.Errorf("backup: disk %s: list extents: %w", d.Source, err)
	}
	size := img.Size()

	split, err := chunk.NewSplitter(b.pol, b.diskParams, chunk.NewPool(3*runtime.GOMAXPROCS(0)+2, b.diskParams.Max))
	if err != nil {
		return err
	}
	ds := &diskState{run: b}
	seg := chunk.NewSegmenter(split, ds.emit)

	free := make(chan *readBuf, diskReadBufs)
	for range diskReadBufs {
		free <- &readBuf{data: make([]byte, readBufSize), free: free}
	}
	digestCh := make(chan diskBlock, diskReadBufs)
	segCh := make(chan diskBlock, diskReadBufs)

	var wg sync.WaitGroup
	var digest string
	wg.Add(2)
	go func() {
		defer wg.Done()
		h := vmdisk.NewDigest()
		for blk := range digestCh {
			if blk.buf != nil {
				h.Write(blk.buf.data[:blk.n])
				blk.buf.release()
				continue
			}
			h.WriteZeros(blk.zeros)
		}
		digest = h.Sum()
	}()
	var segErr error
	go func() {
		defer wg.Done()
		for blk := range segCh {
			if segErr == nil && b.ctx.Err() == nil {
				if blk.buf != nil {
					segErr = seg.Write(blk.buf.data[:blk.n])
					b.bytesDone.Add(uint64(blk.n))
				} else {
					segErr = seg.WriteZeros(blk.zeros)
					b.bytesDone.Add(uint64(blk.zeros))
				}
			}
			if blk.buf != nil {
				blk.buf.release()
			}
		}
		if segErr == nil && b.ctx.Err() == nil {
			segErr = seg.Close()
		} else {
			seg.Reset()
		}
		ds.finish()
	}()

	send := func(blk diskBlock) {
		digestCh <- blk
		segCh <- blk
	}
	readErr := func() error {
		var off int64
		// The extents, then an empty one at the end for the trailing gap.
		for _, e := range append(extents, vmdisk.Extent{Offset: size}) {
			start, end := min(max(e.Offset, off), size), min(e.End(), size)
			if start > off {
				send(diskBlock{zeros: start - off})
				off = start
			}
			for off < end {
				var rb *readBuf
				select {
				case rb = <-free:
				case <-b.ctx.Done():
					return b.err()
				}
				// Read up to the next multiple of the buffer size, so reads
				// stay aligned.
				n := int(min(end-off, int64(readBufSize)-off%readBufSize))
				k, err := img.ReadAt(rb.data[:n], off)
				if k == n && err == io.EOF {
					err = nil
				}
				if err != nil {
					free <- rb
					return fmt.Errorf("backup: read disk %s at offset %d: %w", d.Source, off, err)
				}
				rb.refs.Store(2)
				send(diskBlock{buf: rb, n: n})
				off += int64(n)
			}
		}
		return nil
	}()
	close(digestCh)
	close(segCh)
	wg.Wait()
	ds.wait()
	if readErr != nil {
		b.fail(readErr)
		return readErr
	}
	if err := b.err(); err != nil {
		return err
	}
	if segErr != nil {
		return segErr
	}
	d.Digest = digest
	d.Chunks = ds.chunks
	d.DataBytes = ds.dataBytes
	for _, ids := range ds.lists {
		d.ChunkLists = append(d.ChunkLists, ids...)
	}
	return nil
}

// diskState collects a disk's chunk list in batches that are saved as soon
// as all their chunks are.
type diskState struct {
	*run
	cur     *chunkBatch
	n       int // batches started
	wg      sync.WaitGroup
	mu      sync.Mutex
	lists   [][]repo.ID
	saveErr error

	chunks    uint64
	dataBytes int64
}

type chunkBatch struct {
	d       *diskState
	idx     int
	chunks  []repo.DiskChunk
	pending atomic.Int64
}

// emit receives the pieces of the disk from the segmenter (one goroutine).
func (d *diskState) emit(p chunk.Piece) error {
	if p.Data == nil {
		return nil
	}
	if d.cur == nil {
		d.cur = &chunkBatch{d: d, idx: d.n, chunks: make([]repo.DiskChunk, 0, chunkListBatch)}
		d.cur.pending.Store(1)
		d.n++
		d.wg.Add(1)
	}
	cb := d.cur
	cb.chunks = append(cb.chunks, repo.DiskChunk{Offset: uint64(p.Offset), Length: uint32(p.Len)})
	d.chunks++
	d.dataBytes += p.Len
	cb.pending.Add(1)
	if err := d.submit(p.Data, &cb.chunks[len(cb.chunks)-1].ID, cb); err != nil {
		cb.pending.Add(-1)
		return err
	}
	if len(cb.chunks) == chunkListBatch {
		d.cur = nil
		cb.chunkSaved()
	}
	return nil
}

// finish releases the batch being filled; called when the segmenter is done.
func (d *diskState) finish() {
	if cb := d.cur; cb != nil {
		d.cur = nil
		cb.chunkSaved()
	}
}

func (d *diskState) wait() { d.wg.Wait() }

func (cb *chunkBatch) chunkSaved() {
	if cb.pending.Add(-1) != 0 {
		return
	}
	d := cb.d
	defer d.wg.Done()
	if d.opts.DryRun || d.ctx.Err() != nil {
		return
	}
	ids, err := d.r.SaveChunkList(d.ctx, cb.chunks)
	if err != nil {
		d.fail(fmt.Errorf("save chunk list: %w", err))
		return
	}
	d.treeBlobs.Add(uint64(len(ids)))
	d.mu.Lock()
	for len(d.lists) <= cb.idx {
		d.lists = append(d.lists, nil)
	}
	d.lists[cb.idx] = ids
	d.mu.Unlock()
	cb.chunks = nil
}

// listsIndexed reports whether a parent disk's chunk lists are all in the
// index; a parent whose metadata was lost is not reused.
func (b *run) listsIndexed(ids []repo.ID) bool {
	for _, id := range ids {
		if !b.r.HasBlob(repo.TreeBlob, id) {
			return false
		}
	}
	return true
}
