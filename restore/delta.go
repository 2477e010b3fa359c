package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
)

// span is a piece of a disk: a chunk, or (hole set) a piece of a hole.
// A chunk cut by the edge of a range is partial: [off, off+n) is then a
// part of the chunk that starts at chunkOff and has chunkLen bytes.
type span struct {
	off, n   int64
	hole     bool
	id       repo.ID
	chunkOff int64
	chunkLen int
}

func (s span) partial() bool { return !s.hole && (s.chunkOff != s.off || int64(s.chunkLen) != s.n) }

// holePiece bounds the pieces holes are cut into, so that large holes are
// read in parallel and in bounded memory.
const holePiece = 4 << 20

// spanGen returns a generator of the spans covering [start, end) of the
// disk d in ascending order.
func spanGen(r Repo, d *repo.Disk, start, end int64) func(context.Context, func(span) error) error {
	return func(ctx context.Context, emit func(span) error) error {
		pos := start
		holes := func(to int64) error {
			for pos < to {
				n := min(to-pos, holePiece)
				if err := emit(span{off: pos, n: n, hole: true}); err != nil {
					return err
				}
				pos += n
			}
			return nil
		}
		err := chunkGen(r, d, start, end)(ctx, func(c repo.DiskChunk) error {
			off := int64(c.Offset)
			lo, hi := max(off, start), min(off+int64(c.Length), end)
			if err := holes(lo); err != nil {
				return err
			}
			pos = hi
			return emit(span{off: lo, n: hi - lo, id: c.ID, chunkOff: off, chunkLen: int(c.Length)})
		})
		if err != nil {
			return err
		}
		return holes(end)
	}
}

type deltaResult struct {
	read, written, zeroed, punched int64
	changed                        bool
	err                            error
}

// DiskDelta restores the disk d onto target, an existing raw image file or
// block device, writing only what differs: each chunk's range is read from
// the target and its blob id compared with the snapshot's; only differing
// chunks are loaded and written. Hole ranges are read and only the parts
// that are not zero are cleared: punched out of a regular file
// (FALLOC_FL_PUNCH_HOLE, keeping the size) or written as zeros. A regular
// file is first truncated or extended to the disk size; a device smaller
// than the disk is refused. Reading, hashing and writing run on a pool of
// workers. opts.BlobID is required. The target is synced at the end.
func DiskDelta(ctx context.Context, r Repo, d *repo.Disk, target *os.File, opts DiskOptions) (DiskStats, error) {
	var st DiskStats
	if opts.BlobID == nil {
		return st, errors.New("delta restore: a blob id function is required")
	}
	fi, err := target.Stat()
	if err != nil {
		return st, fmt.Errorf("delta restore: %w", err)
	}
	regular := fi.Mode().IsRegular()
	if regular {
		if fi.Size() != d.Size {
			if err := target.Truncate(d.Size); err != nil {
				return st, fmt.Errorf("delta restore: resize %s: %w", target.Name(), err)
			}
		}
	} else {
		size, err := target.Seek(0, io.SeekEnd)
		if err != nil {
			return st, fmt.Errorf("delta restore: size of %s: %w", target.Name(), err)
		}
		if size < d.Size {
			return st, fmt.Errorf("delta restore: %s has %d bytes, smaller than disk %s (%d bytes)", target.Name(), size, d.Name, d.Size)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := &errorSink{onError: opts.OnError, cancel: cancel}
	prog := progressOrNoop(opts.Progress)
	prog.Total(int64(d.Chunks), d.Size)
	t := &deltaTarget{f: target, regular: regular}
	if regular {
		// The target's data map, taken once: ranges that are holes now
		// read as zeros and need no reading, and the restore's own
		// writes (to disjoint ranges) cannot change that for the ranges
		// still to come.
		t.data = dataSegments(target, 0, d.Size)
	}

	fn := func(ctx context.Context, s span) deltaResult {
		if s.hole {
			return t.clearHole(s.off, s.n)
		}
		return t.updateChunk(ctx, r, opts.BlobID, s)
	}
	sink := func(s span, res deltaResult) error {
		st.BytesRead += res.read
		st.BytesWritten += res.written
		st.ZeroedBytes += res.zeroed
		st.PunchedBytes += res.punched
		if s.hole {
			st.HoleBytes += s.n
			prog.Done(0, s.n)
		} else {
			st.Chunks++
			if res.changed && res.err == nil {
				st.ChunksWritten++
			}
			prog.Done(1, s.n)
		}
		if res.err != nil {
			return errs.report(rangeName(d, s.off, s.off+s.n), res.err)
		}
		return nil
	}
	workers, window := opts.window()
	err = ordered(ctx, workers, window, spanGen(r, d, 0, d.Size), fn, sink)
	failed, ferr := errs.result()
	st.Failed = failed
	if fatal := errs.fatalErr(); fatal != nil {
		return st, fatal
	}
	if err != nil {
		return st, err
	}
	if err := target.Sync(); err != nil {
		return st, fmt.Errorf("delta restore: sync %s: %w", target.Name(), err)
	}
	return st, ferr
}

type deltaTarget struct {
	f       *os.File
	regular bool
	data    []vmdisk.Extent // a regular file's data ranges when the restore started
}

func (t *deltaTarget) updateChunk(ctx context.Context, r Repo, blobID func([]byte) repo.ID, s span) deltaResult {
	var res deltaResult
	p := getBuf(int(s.n))
	read, err := t.read(*p, s.off)
	res.read = read
	if err != nil {
		putBuf(p)
		res.err = err
		return res
	}
	same := blobID(*p) == s.id
	putBuf(p)
	if same {
		return res
	}
	res.changed = true
	p, err = loadBlob(ctx, r, s.id, int(s.n))
	if err != nil {
		res.err = fmt.Errorf("load blob %s: %w", s.id.Str(), err)
		return res
	}
	defer putBuf(p)
	if _, err := t.f.WriteAt(*p, s.off); err != nil {
		res.err = fmt.Errorf("write target: %w", err)
		return res
	}
	res.written = s.n
	return res
}

// segments returns the parts of [off, off+n) that hold data in the target.
func (t *deltaTarget) segments(off, n int64) []vmdisk.Extent {
	if !t.regular {
		return []vmdisk.Extent{{Offset: off, Length: n}}
	}
	end := off + n
	i := sort.Search(len(t.data), func(i int) bool { return t.data[i].End() > off })
	var segs []vmdisk.Extent
	for ; i < len(t.data) && t.data[i].Offset < end; i++ {
		lo, hi := max(t.data[i].Offset, off), min(t.data[i].End(), end)
		segs = append(segs, vmdisk.Extent{Offset: lo, Length: hi - lo})
	}
	return segs
}

// read fills buf with the target's bytes at off, reading only the parts
// that hold data. It returns the number of bytes read.
func (t *deltaTarget) read(buf []byte, off int64) (int64, error) {
	var read int64
	pos := off
	for _, seg := range t.segments(off, int64(len(buf))) {
		clear(buf[pos-off : seg.Offset-off])
		if _, err := t.f.ReadAt(buf[seg.Offset-off:seg.End()-off], seg.Offset); err != nil {
			return read, fmt.Errorf("read target: %w", err)
		}
		read += seg.Length
		pos = seg.End()
	}
	clear(buf[pos-off:])
	return read, nil
}

// zeroBlock is the granularity at which non-zero data in holes is found.
const zeroBlock = 4096

func (t *deltaTarget) clearHole(off, n int64) deltaResult {
	var res deltaResult
	segs := t.segments(off, n)
	p := getBuf(holePiece)
	defer putBuf(p)
	for _, seg := range segs {
		buf := (*p)[:seg.Length]
		if _, err := t.f.ReadAt(buf, seg.Offset); err != nil {
			res.err = fmt.Errorf("read target: %w", err)
			return res
		}
		res.read += seg.Length
		// Runs of non-zero blocks, block boundaries aligned to the disk.
		runStart := int64(-1)
		for pos := seg.Offset; pos < seg.End(); {
			end := min((pos/zeroBlock+1)*zeroBlock, seg.End())
			nz := !allZero(buf[pos-seg.Offset : end-seg.Offset])
			if nz && runStart < 0 {
				runStart = pos
			}
			if !nz && runStart >= 0 {
				if err := t.zero(&res, runStart, pos-runStart); err != nil {
					res.err = err
					return res
				}
				runStart = -1
			}
			pos = end
		}
		if runStart >= 0 {
			if err := t.zero(&res, runStart, seg.End()-runStart); err != nil {
				res.err = err
				return res
			}
		}
	}
	return res
}

func (t *deltaTarget) zero(res *deltaResult, off, n int64) error {
	res.zeroed += n
	if t.regular {
		if err := punchHole(t.f, off, n); err == nil {
			res.punched += n
			return nil
		}
	}
	for n > 0 {
		k := min(n, int64(len(zeroBuf)))
		if _, err := t.f.WriteAt(zeroBuf[:k], off); err != nil {
			return fmt.Errorf("write target: %w", err)
		}
		res.written += k
		off += k
		n -= k
	}
	return nil
}

// VerifyDisk re-reads a restored disk from img and checks it against the
// snapshot's disk d: the whole-disk digest, and, when opts.BlobID is set,
// each chunk's blob id and that holes read as zeros, to name the ranges
// that differ (DiskStats.Mismatches). A difference is an error wrapping
// ErrDigestMismatch. img must hold at least d.Size bytes; a target image
// file is opened with vmdisk.Open, a raw file or device can be passed as
// *os.File.
func VerifyDisk(ctx context.Context, r Repo, d *repo.Disk, img io.ReaderAt, opts DiskOptions) (DiskStats, error) {
	st, err := verifyRange(ctx, r, d, 0, d.Size, img, opts)
	if err != nil {
		return st, err
	}
	if st.Digest != d.Digest || len(st.Mismatches) > 0 {
		return st, mismatchError(fmt.Sprintf("verify disk %s: %v: target has %s, snapshot has %s", d.Name, ErrDigestMismatch, st.Digest, d.Digest), st.Mismatches)
	}
	return st, nil
}

// VerifyDiskRange re-reads a restored partition: img holds the bytes
// [start, start+length) of the disk d from its offset 0. Every chunk is
// compared with its blob id (opts.BlobID is required; a chunk cut by the
// range's edges is loaded and compared byte by byte) and every hole must
// read as zeros. Mismatches are given in img's offsets; a difference is
// an error wrapping ErrDigestMismatch. DiskStats.Digest is the BLAKE3
// digest of the range as read.
func VerifyDiskRange(ctx context.Context, r Repo, d *repo.Disk, start, length int64, img io.ReaderAt, opts DiskOptions) (DiskStats, error) {
	if opts.BlobID == nil {
		return DiskStats{}, errors.New("verify: a blob id function is required")
	}
	if err := checkRange(d, start, length); err != nil {
		return DiskStats{}, fmt.Errorf("verify disk %s: %w", d.Name, err)
	}
	st, err := verifyRange(ctx, r, d, start, start+length, &offsetReader{img, -start}, opts)
	for i := range st.Mismatches {
		st.Mismatches[i].Offset -= start
	}
	if err == nil && len(st.Mismatches) > 0 {
		err = mismatchError(fmt.Sprintf("verify disk %s range %d+%d: %v", d.Name, start, length, ErrDigestMismatch), st.Mismatches)
	}
	return st, err
}

// offsetReader reads r at offsets shifted by delta.
type offsetReader struct {
	r     io.ReaderAt
	delta int64
}

func (o *offsetReader) ReadAt(p []byte, off int64) (int, error) { return o.r.ReadAt(p, off+o.delta) }

func verifyRange(ctx context.Context, r Repo, d *repo.Disk, start, end int64, img io.ReaderAt, opts DiskOptions) (DiskStats, error) {
	var st DiskStats
	type verified struct {
		p     *[]byte
		match bool
		err   error
	}
	fn := func(ctx context.Context, s span) verified {
		p := getBuf(int(s.n))
		if n, err := img.ReadAt(*p, s.off); n < int(s.n) {
			putBuf(p)
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return verified{err: fmt.Errorf("read target at offset %d: %w", s.off, err)}
		}
		v := verified{p: p, match: true}
		switch {
		case s.hole:
			v.match = allZero(*p)
		case s.partial():
			b, err := loadBlob(ctx, r, s.id, s.chunkLen)
			if err != nil {
				putBuf(p)
				return verified{err: fmt.Errorf("load blob %s: %w", s.id.Str(), err)}
			}
			v.match = bytes.Equal(*p, (*b)[s.off-s.chunkOff:s.off-s.chunkOff+s.n])
			putBuf(b)
		case opts.BlobID != nil:
			v.match = opts.BlobID(*p) == s.id
		}
		return v
	}
	prog := progressOrNoop(opts.Progress)
	prog.Total(int64(d.Chunks), end-start)
	h := vmdisk.NewDigest()
	sink := func(s span, v verified) error {
		if v.err != nil {
			return fmt.Errorf("verify disk %s: %w", d.Name, v.err)
		}
		defer putBuf(v.p)
		h.Write(*v.p)
		st.BytesRead += s.n
		if s.hole {
			st.HoleBytes += s.n
			prog.Done(0, s.n)
		} else {
			st.Chunks++
			prog.Done(1, s.n)
		}
		if !v.match {
			if k := len(st.Mismatches); k > 0 && st.Mismatches[k-1].End() == s.off {
				st.Mismatches[k-1].Length += s.n
			} else {
				st.Mismatches = append(st.Mismatches, vmdisk.Extent{Offset: s.off, Length: s.n})
			}
		}
		return nil
	}
	workers, window := opts.window()
	if err := ordered(ctx, workers, window, spanGen(r, d, start, end), fn, sink); err != nil {
		return st, err
	}
	st.Digest = h.Sum()
	return st, nil
}

func mismatchError(msg string, ranges []vmdisk.Extent) error {
	for i, m := range ranges {
		if i == 5 {
			msg += fmt.Sprintf(" and %d more ranges", len(ranges)-i)
			break
		}
		sep := ", "
		if i == 0 {
			sep = "; differing ranges: "
		}
		msg += fmt.Sprintf("%s%d+%d", sep, m.Offset, m.Length)
	}
	return &verifyError{msg: msg}
}

type verifyError struct{ msg string }

func (e *verifyError) Error() string { return e.msg }
func (e *verifyError) Unwrap() error { return ErrDigestMismatch }
