package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
)

// ErrDigestMismatch is wrapped by the error returned when a restored disk's
// whole-disk digest differs from the snapshot's.
var ErrDigestMismatch = errors.New("disk digest mismatch")

// DiskOptions tune disk restores.
type DiskOptions struct {
	// Workers is the number of blob loaders (and target readers for
	// DiskDelta and VerifyDisk); 0 means GOMAXPROCS.
	Workers int
	// BlobID computes the repository's keyed blob id of plaintext; needed
	// by DiskDelta, and by VerifyDisk to name the ranges that differ.
	BlobID func([]byte) repo.ID
	// OnError is called for a range that cannot be restored (a damaged
	// blob), named "disk:NAME@START-END". When it returns nil the restore
	// goes on with the rest and ends with an *IncompleteError; a nil
	// OnError aborts on the first error.
	OnError func(path string, err error) error
	// Progress receives progress in chunks and bytes of the disk.
	Progress Progress
}

// DiskStats summarises a disk restore, delta restore or verification.
type DiskStats struct {
	Chunks        uint64 // chunks in the restored range
	ChunksWritten uint64 // chunks written; for DiskDelta the chunks that differed
	BytesWritten  int64  // bytes written to the target, zeros included
	BytesRead     int64  // bytes read from the target (DiskDelta, VerifyDisk)
	HoleBytes     int64  // bytes of the range that are holes
	ZeroedBytes   int64  // DiskDelta: hole bytes that were not zero in the target
	PunchedBytes  int64  // DiskDelta: of ZeroedBytes, those deallocated by punching holes
	// BlocksChanged counts the 4 KiB blocks (aligned to the disk, cut by
	// chunk edges) that DiskDelta wrote or cleared because they differed.
	BlocksChanged int64
	// Digest is the whole-disk digest computed while writing (Disk) or
	// reading (VerifyDisk), hex.
	Digest string
	// Mismatches are the ranges of the target that differ from the
	// snapshot (VerifyDisk).
	Mismatches []vmdisk.Extent
	// Failed lists the ranges that could not be restored.
	Failed []Failure
}

// window returns the number of workers and of chunks in flight: disk
// chunks are small (128 KiB on average, at most 1 MiB by default), so a
// deep window costs little memory and hides backend latency.
func (o DiskOptions) window() (workers, window int) {
	w := workerCount(o.Workers)
	return w, 16 * w
}

func rangeName(d *repo.Disk, off, end int64) string {
	return fmt.Sprintf("disk:%s@%d-%d", d.Name, off, end)
}

// chunkGen returns a generator of the chunks of d overlapping [start, end).
// It checks that the chunk list is sorted, non-overlapping and inside the
// disk.
func chunkGen(r Repo, d *repo.Disk, start, end int64) func(context.Context, func(repo.DiskChunk) error) error {
	return func(ctx context.Context, emit func(repo.DiskChunk) error) error {
		var prev int64
		stopped := false
		err := r.LoadChunkList(ctx, d.ChunkLists, func(c repo.DiskChunk) error {
			if c.Offset > math.MaxInt64-math.MaxUint32 {
				return fmt.Errorf("disk %s: chunk list entry at offset %d beyond the disk", d.Name, c.Offset)
			}
			off := int64(c.Offset)
			cend := off + int64(c.Length)
			if off < prev || c.Length == 0 || cend > d.Size {
				return fmt.Errorf("disk %s: chunk list entry at offset %d (%d bytes) out of order or beyond the disk", d.Name, off, c.Length)
			}
			prev = cend
			if cend <= start {
				return nil
			}
			if off >= end {
				stopped = true
				return errStop
			}
			return emit(c)
		})
		if stopped {
			return nil
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("load chunk list of disk %s: %w", d.Name, err)
		}
		return err
	}
}

// streamDisk loads the chunks of d overlapping [start, end) in parallel and
// hands them in ascending order to data (disk offset and the part of the
// chunk inside the range; data takes ownership of p), and the holes between
// them to gap. A chunk that cannot be loaded is reported to errs and, when
// that allows, passed on as a gap.
func streamDisk(ctx context.Context, r Repo, d *repo.Disk, start, end int64, opts DiskOptions, errs *errorSink,
	st *DiskStats, data func(off int64, b []byte, p *[]byte) error, gap func(off, n int64) error) error {

	prog := progressOrNoop(opts.Progress)
	prog.Total(int64(d.Chunks), end-start)
	workers, window := opts.window()
	pos := start
	doGap := func(to int64) error {
		if to <= pos {
			return nil
		}
		n := to - pos
		st.HoleBytes += n
		if err := gap(pos, n); err != nil {
			return err
		}
		prog.Done(0, n)
		pos = to
		return nil
	}
	load := func(ctx context.Context, c repo.DiskChunk) loaded {
		p, err := loadBlob(ctx, r, c.ID, int(c.Length))
		return loaded{p: p, err: err}
	}
	sink := func(c repo.DiskChunk, l loaded) error {
		off, cend := int64(c.Offset), int64(c.Offset)+int64(c.Length)
		lo, hi := max(off, start), min(cend, end)
		if err := doGap(lo); err != nil {
			putBuf(l.p)
			return err
		}
		st.Chunks++
		if l.err != nil {
			if err := errs.report(rangeName(d, lo, hi), fmt.Errorf("load blob %s: %w", c.ID.Str(), l.err)); err != nil {
				return err
			}
			// Leave the range unwritten; it is listed as failed.
			if err := gap(lo, hi-lo); err != nil {
				return err
			}
			pos = hi
			prog.Done(1, hi-lo)
			return nil
		}
		b := (*l.p)[lo-off : hi-off]
		if err := data(lo, b, l.p); err != nil {
			return err
		}
		st.ChunksWritten++
		pos = hi
		prog.Done(1, hi-lo)
		return nil
	}
	if err := ordered(ctx, workers, window, chunkGen(r, d, start, end), load, sink); err != nil {
		return err
	}
	return doGap(end)
}

func checkRange(d *repo.Disk, start, length int64) error {
	if start < 0 || length < 0 || start > d.Size || length > d.Size-start {
		return fmt.Errorf("range %d+%d outside disk %s of %d bytes", start, length, d.Name, d.Size)
	}
	return nil
}

// Disk restores the disk d into w, which must be at least as large as the
// disk. Chunks are written in ascending offset order with WriteAt; holes
// are never written (the writer leaves them sparse or zero). While
// writing, the whole-disk BLAKE3 digest is computed and compared with
// d.Digest; a difference is an error wrapping ErrDigestMismatch. Disk does
// not close w.
func Disk(ctx context.Context, r Repo, d *repo.Disk, w vmdisk.Writer, opts DiskOptions) (DiskStats, error) {
	var st DiskStats
	if w.Size() < d.Size {
		return st, fmt.Errorf("restore disk %s: target of %d bytes is smaller than the disk (%d bytes)", d.Name, w.Size(), d.Size)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := &errorSink{onError: opts.OnError, cancel: cancel}

	// The digest is computed by its own goroutine, so hashing overlaps
	// with writing.
	type hashItem struct {
		off int64
		b   []byte
		p   *[]byte
		gap int64
	}
	hashCh := make(chan hashItem, 16)
	var digest string
	var hwg sync.WaitGroup
	hwg.Add(1)
	go func() {
		defer hwg.Done()
		h := vmdisk.NewDigest()
		for it := range hashCh {
			if it.p != nil {
				h.Write(it.b)
				putBuf(it.p)
			} else {
				h.WriteZeros(it.gap)
			}
		}
		digest = h.Sum()
	}()

	data := func(off int64, b []byte, p *[]byte) error {
		if _, err := w.WriteAt(b, off); err != nil {
			putBuf(p)
			return fmt.Errorf("restore disk %s: write at offset %d: %w", d.Name, off, err)
		}
		st.BytesWritten += int64(len(b))
		hashCh <- hashItem{off: off, b: b, p: p}
		return nil
	}
	gap := func(off, n int64) error {
		hashCh <- hashItem{off: off, gap: n}
		return nil
	}
	err := streamDisk(ctx, r, d, 0, d.Size, opts, errs, &st, data, gap)
	close(hashCh)
	hwg.Wait()
	failed, ferr := errs.result()
	st.Failed = failed
	if fatal := errs.fatalErr(); fatal != nil {
		return st, fatal
	}
	if err != nil {
		return st, err
	}
	if ferr != nil {
		return st, ferr
	}
	st.Digest = digest
	if d.Digest != "" && digest != d.Digest {
		return st, fmt.Errorf("restore disk %s: %w: wrote %s, snapshot has %s", d.Name, ErrDigestMismatch, digest, d.Digest)
	}
	return st, nil
}

// DiskRange restores the byte range [start, start+length) of the disk d
// (a partition) into w, the range's first byte at offset 0 of w. Writes
// are in ascending offset order and holes are not written, so w may be a
// vmdisk.Writer of size length or a fresh sparse file. Each chunk is
// verified by its blob id while loading; there is no whole-range digest.
func DiskRange(ctx context.Context, r Repo, d *repo.Disk, start, length int64, w io.WriterAt, opts DiskOptions) (DiskStats, error) {
	var st DiskStats
	if err := checkRange(d, start, length); err != nil {
		return st, fmt.Errorf("restore disk %s: %w", d.Name, err)
	}
	if vw, ok := w.(vmdisk.Writer); ok && vw.Size() < length {
		return st, fmt.Errorf("restore disk %s: target of %d bytes is smaller than the range (%d bytes)", d.Name, vw.Size(), length)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := &errorSink{onError: opts.OnError, cancel: cancel}
	data := func(off int64, b []byte, p *[]byte) error {
		defer putBuf(p)
		if _, err := w.WriteAt(b, off-start); err != nil {
			return fmt.Errorf("restore disk %s: write at offset %d: %w", d.Name, off-start, err)
		}
		st.BytesWritten += int64(len(b))
		return nil
	}
	gap := func(off, n int64) error { return nil }
	err := streamDisk(ctx, r, d, start, start+length, opts, errs, &st, data, gap)
	failed, ferr := errs.result()
	st.Failed = failed
	if fatal := errs.fatalErr(); fatal != nil {
		return st, fatal
	}
	if err != nil {
		return st, err
	}
	return st, ferr
}

// DumpDisk streams the byte range [start, start+length) of the disk d to
// out, holes as zeros. Blobs are loaded ahead in parallel.
func DumpDisk(ctx context.Context, r Repo, d *repo.Disk, start, length int64, out io.Writer) error {
	if err := checkRange(d, start, length); err != nil {
		return fmt.Errorf("dump disk %s: %w", d.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := &errorSink{cancel: cancel}
	var st DiskStats
	data := func(off int64, b []byte, p *[]byte) error {
		defer putBuf(p)
		if _, err := out.Write(b); err != nil {
			return fmt.Errorf("dump disk %s: %w", d.Name, err)
		}
		return nil
	}
	gap := func(off, n int64) error {
		if err := writeZeros(out, n); err != nil {
			return fmt.Errorf("dump disk %s: %w", d.Name, err)
		}
		return nil
	}
	err := streamDisk(ctx, r, d, start, start+length, DiskOptions{}, errs, &st, data, gap)
	if fatal := errs.fatalErr(); fatal != nil {
		return fatal
	}
	return err
}
