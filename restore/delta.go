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
	blocks                         int64 // blocks written or cleared
	firstBlock, lastBlock          int64 // their first and last index; -1 when none
	changed                        bool
	err                            error
}

func newDeltaResult() deltaResult { return deltaResult{firstBlock: -1, lastBlock: -1} }

// mark counts the 4 KiB blocks of the disk that [off, off+n) touches,
// each once: marks come in ascending order, so only the first block can
// have been counted already.
func (res *deltaResult) mark(off, n int64) {
	first, last := off/zeroBlock, (off+n-1)/zeroBlock
	if first == res.lastBlock {
		first++
	}
	if first > last {
		return
	}
	if res.firstBlock < 0 {
		res.firstBlock = first
	}
	res.blocks += last - first + 1
	res.lastBlock = last
}

// DiskDelta restores the disk d onto target, an existing raw image file or
// block device, writing only what differs: each chunk's range is read from
// the target and its blob id compared with the snapshot's; a chunk that
// differs is loaded and compared with the target in blocks of 4 KiB
// (aligned to the disk), and only the blocks that differ are written.
// Hole ranges are read and only the blocks that are not zero are cleared:
// punched out of a regular file (FALLOC_FL_PUNCH_HOLE, keeping the size)
// or written as zeros. A regular file is first truncated or extended to
// the disk size; a device smaller than the disk is refused. The target is
// read in order, in runs of adjacent chunks and holes of up to 1 MiB (one
// read each, with sequential read-ahead advised), and the runs are
// compared and written by a pool of workers. opts.BlobID is required.
// The target is synced at the end.
func DiskDelta(ctx context.Context, r Repo, d *repo.Disk, target *os.File, opts DiskOptions) (DiskStats, error) {
	return deltaRange(ctx, r, d, 0, d.Size, target, opts)
}

// DiskDeltaRange is DiskDelta for the byte range [start, start+length) of
// the disk d (a partition): target holds the range from its offset 0, as
// a partition device or an image file of the partition does. Chunks cut
// by the range's edges are loaded and compared byte by byte.
func DiskDeltaRange(ctx context.Context, r Repo, d *repo.Disk, start, length int64, target *os.File, opts DiskOptions) (DiskStats, error) {
	if err := checkRange(d, start, length); err != nil {
		return DiskStats{}, fmt.Errorf("delta restore: %w", err)
	}
	return deltaRange(ctx, r, d, start, start+length, target, opts)
}

func deltaRange(ctx context.Context, r Repo, d *repo.Disk, start, end int64, target *os.File, opts DiskOptions) (DiskStats, error) {
	var st DiskStats
	if opts.BlobID == nil {
		return st, errors.New("delta restore: a blob id function is required")
	}
	length := end - start
	fi, err := target.Stat()
	if err != nil {
		return st, fmt.Errorf("delta restore: %w", err)
	}
	regular := fi.Mode().IsRegular()
	if regular {
		if fi.Size() != length {
			if err := target.Truncate(length); err != nil {
				return st, fmt.Errorf("delta restore: resize %s: %w", target.Name(), err)
			}
		}
	} else {
		size, err := target.Seek(0, io.SeekEnd)
		if err != nil {
			return st, fmt.Errorf("delta restore: size of %s: %w", target.Name(), err)
		}
		if size < length {
			return st, fmt.Errorf("delta restore: %s has %d bytes, smaller than disk %s (%d bytes)", target.Name(), size, d.Name, length)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := &errorSink{onError: opts.OnError, cancel: cancel}
	prog := progressOrNoop(opts.Progress)
	prog.Total(int64(d.Chunks), length)
	t := &deltaTarget{f: target, regular: regular, base: start}
	if regular {
		// The target's data map, taken once: ranges that are holes now
		// read as zeros and need no reading, and the restore's own
		// writes (to disjoint ranges) cannot change that for the ranges
		// still to come.
		for _, e := range dataSegments(target, 0, length) {
			t.data = append(t.data, vmdisk.Extent{Offset: e.Offset + start, Length: e.Length})
		}
	}

	adviseSequential(target)

	lastBlock := int64(-1)
	fn := func(ctx context.Context, b []span) []deltaResult {
		return t.update(ctx, r, opts.BlobID, b)
	}
	sink := func(b []span, results []deltaResult) error {
		for i, s := range b {
			res := results[i]
			st.BytesRead += res.read
			st.BytesWritten += res.written
			st.ZeroedBytes += res.zeroed
			st.PunchedBytes += res.punched
			// A block cut by a span's edge may be counted by both spans.
			st.BlocksChanged += res.blocks
			if res.blocks > 0 {
				if res.firstBlock == lastBlock {
					st.BlocksChanged--
				}
				lastBlock = res.lastBlock
			}
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
				if err := errs.report(rangeName(d, s.off, s.off+s.n), res.err); err != nil {
					return err
				}
			}
		}
		return nil
	}
	workers, _ := opts.window()
	err = ordered(ctx, workers, 4*workers, batchGen(spanGen(r, d, start, end), deltaBatch), fn, sink)
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

// deltaBatch bounds the range of the disk that a delta restore worker
// reads from the target and compares at once: large sequential reads, few
// hand-offs between goroutines, and a buffer that stays in the CPU cache
// while its chunks are hashed.
const deltaBatch = 1 << 20

// batchGen groups the spans of gen into runs of adjacent spans that
// together cover at most limit bytes; a longer span is a batch of its own.
func batchGen(gen func(context.Context, func(span) error) error, limit int64) func(context.Context, func([]span) error) error {
	return func(ctx context.Context, emit func([]span) error) error {
		var cur []span
		err := gen(ctx, func(s span) error {
			if len(cur) > 0 && s.off+s.n-cur[0].off > limit {
				b := cur
				cur = nil
				if err := emit(b); err != nil {
					return err
				}
			}
			cur = append(cur, s)
			return nil
		})
		if err != nil || len(cur) == 0 {
			return err
		}
		return emit(cur)
	}
}

// deltaTarget is the target of a delta restore; its methods take disk
// offsets, the target holding the disk from offset base on.
type deltaTarget struct {
	f       *os.File
	regular bool
	base    int64
	data    []vmdisk.Extent // a regular file's data ranges when the restore started, in disk offsets
}

// update brings the target's range of the adjacent spans b up to date: it
// reads the range once, then compares each chunk (by blob id, then block
// by block when it differs) and clears the non-zero blocks of each hole.
// A hole span on its own (a large hole) is read in pieces instead.
func (t *deltaTarget) update(ctx context.Context, r Repo, blobID func([]byte) repo.ID, b []span) []deltaResult {
	res := make([]deltaResult, len(b))
	for i := range res {
		res[i] = newDeltaResult()
	}
	if len(b) == 1 && b[0].hole {
		res[0] = t.clearHole(b[0].off, b[0].n)
		return res
	}
	lo, hi := b[0].off, b[len(b)-1].off+b[len(b)-1].n
	p := getBuf(int(hi - lo))
	defer putBuf(p)
	read, err := t.read(*p, lo)
	res[0].read = read
	if err != nil {
		for i := range res {
			res[i].err = err
		}
		return res
	}
	buf := *p
	for i, s := range b {
		cur := buf[s.off-lo : s.off-lo+s.n]
		if s.hole {
			if err := t.clearBlocks(&res[i], cur, s.off); err != nil {
				res[i].err = err
			}
			continue
		}
		t.updateChunk(ctx, r, blobID, s, cur, &res[i])
	}
	return res
}

// updateChunk compares the chunk span s with cur, the target's bytes of
// its range, and writes the 4 KiB blocks (aligned to the disk) that differ.
func (t *deltaTarget) updateChunk(ctx context.Context, r Repo, blobID func([]byte) repo.ID, s span, cur []byte, res *deltaResult) {
	if !s.partial() && blobID(cur) == s.id {
		return
	}
	b, err := loadBlob(ctx, r, s.id, s.chunkLen)
	if err != nil {
		res.err = fmt.Errorf("load blob %s: %w", s.id.Str(), err)
		return
	}
	defer putBuf(b)
	want := (*b)[s.off-s.chunkOff : s.off-s.chunkOff+s.n]
	runStart := int64(-1)
	flush := func(to int64) error {
		if runStart < 0 {
			return nil
		}
		lo, hi := runStart-s.off, to-s.off
		if _, err := t.f.WriteAt(want[lo:hi], runStart-t.base); err != nil {
			return fmt.Errorf("write target: %w", err)
		}
		res.written += hi - lo
		runStart = -1
		return nil
	}
	for pos, end := s.off, s.off+s.n; pos < end; {
		next := min((pos/zeroBlock+1)*zeroBlock, end)
		if string(cur[pos-s.off:next-s.off]) != string(want[pos-s.off:next-s.off]) {
			res.mark(pos, next-pos)
			if runStart < 0 {
				runStart = pos
			}
		} else if err := flush(pos); err != nil {
			res.err = err
			return
		}
		pos = next
	}
	if err := flush(s.off + s.n); err != nil {
		res.err = err
		return
	}
	res.changed = res.written > 0
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
		if _, err := t.f.ReadAt(buf[seg.Offset-off:seg.End()-off], seg.Offset-t.base); err != nil {
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

// clearHole clears the non-zero blocks of the hole [off, off+n), reading
// the target's data in it piece by piece.
func (t *deltaTarget) clearHole(off, n int64) deltaResult {
	res := newDeltaResult()
	p := getBuf(holePiece)
	defer putBuf(p)
	for _, seg := range t.segments(off, n) {
		for pos := seg.Offset; pos < seg.End(); {
			k := min(seg.End()-pos, holePiece)
			buf := (*p)[:k]
			if _, err := t.f.ReadAt(buf, pos-t.base); err != nil {
				res.err = fmt.Errorf("read target: %w", err)
				return res
			}
			res.read += k
			if err := t.clearBlocks(&res, buf, pos); err != nil {
				res.err = err
				return res
			}
			pos += k
		}
	}
	return res
}

// clearBlocks clears the runs of non-zero blocks of buf, the target's
// bytes at disk offset off that the snapshot has as zeros; block
// boundaries are aligned to the disk.
func (t *deltaTarget) clearBlocks(res *deltaResult, buf []byte, off int64) error {
	end := off + int64(len(buf))
	runStart := int64(-1)
	for pos := off; pos < end; {
		next := min((pos/zeroBlock+1)*zeroBlock, end)
		nz := !allZero(buf[pos-off : next-off])
		if nz && runStart < 0 {
			runStart = pos
		}
		if !nz && runStart >= 0 {
			if err := t.zero(res, runStart, pos-runStart); err != nil {
				return err
			}
			runStart = -1
		}
		pos = next
	}
	if runStart >= 0 {
		return t.zero(res, runStart, end-runStart)
	}
	return nil
}

func (t *deltaTarget) zero(res *deltaResult, off, n int64) error {
	res.zeroed += n
	res.mark(off, n)
	off -= t.base
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
//
// Only what the target has allocated is read: the extents of a
// vmdisk.Image, the data ranges (SEEK_DATA/SEEK_HOLE) of a regular
// *os.File; the rest is known to read as zeros and costs a table look-up
// in the digest. Other readers (a device) are read in full.
// DiskStats.BytesRead tells how much was read.
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
	// The target's allocated ranges, in disk offsets: the rest reads as
	// zeros and is neither read nor hashed byte by byte.
	alloc, known, err := targetExtents(img, start, end)
	if err != nil {
		return st, fmt.Errorf("verify disk %s: %w", d.Name, err)
	}
	// A deltaTarget only for its segments method: with known extents
	// (regular) it cuts a span to the target's allocated parts.
	t := &deltaTarget{data: alloc, regular: known}
	type verified struct {
		p     *[]byte // nil: the span reads as zeros and was not read
		read  int64
		match bool
		err   error
	}
	fn := func(ctx context.Context, s span) verified {
		segs := t.segments(s.off, s.n)
		if s.hole && len(segs) == 0 {
			return verified{match: true}
		}
		p := getBuf(int(s.n))
		v := verified{p: p, match: true}
		pos := s.off
		for _, seg := range segs {
			clear((*p)[pos-s.off : seg.Offset-s.off])
			b := (*p)[seg.Offset-s.off : seg.End()-s.off]
			if n, err := img.ReadAt(b, seg.Offset); n < len(b) {
				putBuf(p)
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return verified{err: fmt.Errorf("read target at offset %d: %w", seg.Offset, err)}
			}
			v.read += seg.Length
			pos = seg.End()
		}
		clear((*p)[pos-s.off:])
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
		if v.p != nil {
			h.Write(*v.p)
			putBuf(v.p)
		} else {
			h.WriteZeros(s.n)
		}
		st.BytesRead += v.read
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

// targetExtents returns the allocated ranges of a verification target
// within the disk range [start, end), in disk offsets, when they can be
// known: a vmdisk.Image tells its extents, a regular file its data ranges
// (SEEK_DATA/SEEK_HOLE). known is false for other readers (a device, a
// reader in memory), which are read in full. img may be an offsetReader
// mapping disk offsets to the target's.
func targetExtents(img io.ReaderAt, start, end int64) (ext []vmdisk.Extent, known bool, err error) {
	delta := int64(0)
	if o, ok := img.(*offsetReader); ok {
		img, delta = o.r, o.delta
	}
	lo, hi := start+delta, end+delta // the range in the target's offsets
	switch t := img.(type) {
	case vmdisk.Image:
		if t.Size() < hi {
			return nil, false, fmt.Errorf("target has %d bytes, want %d: %w", t.Size(), hi, io.ErrUnexpectedEOF)
		}
		all, err := t.Extents()
		if err != nil {
			return nil, false, fmt.Errorf("extents of the target: %w", err)
		}
		for _, e := range all {
			a, b := max(e.Offset, lo), min(e.End(), hi)
			if a < b {
				ext = append(ext, vmdisk.Extent{Offset: a - delta, Length: b - a})
			}
		}
		return ext, true, nil
	case *os.File:
		fi, err := t.Stat()
		if err != nil {
			return nil, false, err
		}
		if !fi.Mode().IsRegular() {
			return nil, false, nil
		}
		if fi.Size() < hi {
			return nil, false, fmt.Errorf("%s has %d bytes, want %d: %w", t.Name(), fi.Size(), hi, io.ErrUnexpectedEOF)
		}
		for _, e := range dataSegments(t, lo, hi-lo) {
			ext = append(ext, vmdisk.Extent{Offset: e.Offset - delta, Length: e.Length})
		}
		return ext, true, nil
	}
	return nil, false, nil
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
