package vmdk

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zlib"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/zeros"
)

// Writer layout constants, as qemu and VMware write them.
const (
	wGrainSectors = 128 // 64 KiB grains
	wGrainBytes   = wGrainSectors * sector
	wGTEs         = 512
	wGTSectors    = wGTEs * 4 / sector
	wDescOffset   = 1
	wDescSectors  = 20
	wOverhead     = 128 // stream: grains start after the first 64 KiB
	flushSize     = 1 << 20
	// GTEs are 32-bit sector numbers, so a sparse file stays below 2 TiB.
	maxFileSectors = 1<<32 - 1
)

// Create makes a VMDK of size bytes at path. variant is "" or
// "monolithicSparse" (embedded descriptor, redundant grain directory and
// tables, grains appended in order) or "streamOptimized" (VMware layout:
// version 3, zlib-compressed grains behind markers, grain tables and
// directory at the end with a footer). All-zero grains are not stored.
// Writes must come in ascending offset order without overlap.
func Create(path string, size int64, variant string) (vmdisk.Writer, error) {
	if size < 0 {
		return nil, fmt.Errorf("create %s: negative size %d", path, size)
	}
	switch variant {
	case "", "monolithicSparse":
		return newSparseWriter(path, size)
	case "streamOptimized":
		return newStreamWriter(path, size)
	}
	return nil, fmt.Errorf("create %s: unknown VMDK variant %q (want monolithicSparse or streamOptimized)", path, variant)
}

func newCID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	cid := binary.LittleEndian.Uint32(b[:])
	if cid == noParent || cid == noParent-1 {
		cid = 0x12345678
	}
	return cid
}

// grainBuffer collects ascending writes into whole grains.
type grainBuffer struct {
	path string
	size int64
	next int64 // lowest offset the next write may start at
	cur  int64 // grain in buf, -1 for none
	buf  []byte
	emit func(g int64, data []byte) error
}

// check rejects a write out of range or out of order; the writer stays
// usable.
func (b *grainBuffer) check(p []byte, off int64) error {
	if off < 0 || off > b.size-int64(len(p)) {
		return fmt.Errorf("write %s: range %d+%d outside the %d-byte disk", b.path, off, len(p), b.size)
	}
	if off < b.next {
		return fmt.Errorf("write %s: offset %d before %d: writes must ascend", b.path, off, b.next)
	}
	return nil
}

// write buffers p (already checked) into grains, emitting full ones.
func (b *grainBuffer) write(p []byte, off int64) (int, error) {
	n := len(p)
	for len(p) > 0 {
		g := off / wGrainBytes
		if g != b.cur {
			if err := b.flush(); err != nil {
				return 0, err
			}
			b.cur = g
		}
		in := off % wGrainBytes
		k := copy(b.buf[in:], p)
		p = p[k:]
		off += int64(k)
	}
	b.next = off
	return n, nil
}

func (b *grainBuffer) flush() error {
	if b.cur < 0 {
		return nil
	}
	g := b.cur
	b.cur = -1
	if !zeros.Is(b.buf) {
		if err := b.emit(g, b.buf); err != nil {
			return err
		}
	}
	clear(b.buf)
	return nil
}

// appender buffers sequential writes to the end of a file.
type appender struct {
	f   *os.File
	off int64 // file offset of buf[0]
	buf []byte
}

func (a *appender) write(p []byte) error {
	if len(a.buf)+len(p) > flushSize {
		if err := a.flush(); err != nil {
			return err
		}
	}
	a.buf = append(a.buf, p...)
	return nil
}

// pos returns the file offset the next appended byte lands at.
func (a *appender) pos() int64 { return a.off + int64(len(a.buf)) }

func (a *appender) flush() error {
	if len(a.buf) == 0 {
		return nil
	}
	if _, err := a.f.WriteAt(a.buf, a.off); err != nil {
		return err
	}
	a.off += int64(len(a.buf))
	a.buf = a.buf[:0]
	return nil
}

func finish(f *os.File, path string, err error) error {
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// sparseWriter writes a monolithicSparse VMDK.
type sparseWriter struct {
	f       *os.File
	path    string
	size    int64
	h       header
	gdSec   uint64 // first grain table sector (primary)
	rgdSec  uint64
	gtSec   uint64 // first grain table, primary
	rgtSec  uint64
	gtIndex int      // grain table being filled, -1 for none
	gt      []uint32 // its entries
	grains  grainBuffer
	out     appender
	err     error
	closed  bool
	gdCount uint64
}

func newSparseWriter(path string, size int64) (*sparseWriter, error) {
	capacity := uint64(size+sector-1) / sector
	h := header{Version: 1, Flags: flagNewlineTest | flagRedundantGT, Capacity: capacity,
		GrainSize: wGrainSectors, DescriptorOffset: wDescOffset, DescriptorSize: wDescSectors,
		NumGTEsPerGT: wGTEs}
	n := h.gdEntries()
	gdSectors := (n*4 + sector - 1) / sector
	w := &sparseWriter{path: path, size: size, gdCount: n, gtIndex: -1, gt: make([]uint32, wGTEs)}
	w.rgdSec = wDescOffset + wDescSectors
	w.rgtSec = w.rgdSec + gdSectors
	w.gdSec = w.rgtSec + n*wGTSectors
	w.gtSec = w.gdSec + gdSectors
	overhead := (w.gtSec + n*wGTSectors + wGrainSectors - 1) / wGrainSectors * wGrainSectors
	h.RGDOffset, h.GDOffset, h.OverHead = w.rgdSec, w.gdSec, overhead
	w.h = h
	grains := (capacity + wGrainSectors - 1) / wGrainSectors
	if overhead+grains*wGrainSectors > maxFileSectors {
		return nil, fmt.Errorf("create %s: %d bytes is too large for a sparse VMDK (2 TiB limit)", path, size)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(int64(overhead) * sector); err != nil {
		f.Close()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	w.f = f
	w.out = appender{f: f, off: int64(overhead) * sector}
	w.grains = grainBuffer{path: path, size: size, cur: -1, buf: make([]byte, wGrainBytes), emit: w.emit}
	return w, nil
}

func (w *sparseWriter) Size() int64 { return w.size }

func (w *sparseWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.grains.check(p, off); err != nil {
		return 0, err
	}
	n, err := w.grains.write(p, off)
	if err != nil {
		w.err = err
	}
	return n, err
}

// emit appends grain g and records it in its grain table.
func (w *sparseWriter) emit(g int64, data []byte) error {
	if i := int(g / wGTEs); i != w.gtIndex {
		if err := w.flushGT(); err != nil {
			return err
		}
		w.gtIndex = i
	}
	w.gt[g%wGTEs] = uint32(w.out.pos() / sector)
	if err := w.out.write(data); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// flushGT writes the current grain table, both copies.
func (w *sparseWriter) flushGT() error {
	if w.gtIndex < 0 {
		return nil
	}
	b := make([]byte, wGTEs*4)
	for i, v := range w.gt {
		binary.LittleEndian.PutUint32(b[i*4:], v)
	}
	i := uint64(w.gtIndex)
	for _, at := range []uint64{w.gtSec, w.rgtSec} {
		if _, err := w.f.WriteAt(b, int64(at+i*wGTSectors)*sector); err != nil {
			return fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	clear(w.gt)
	w.gtIndex = -1
	return nil
}

// Close writes the last grain, the tables, directories, descriptor and
// header, and syncs the file.
func (w *sparseWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.grains.flush()
	}
	if err == nil {
		err = w.flushGT()
	}
	if err == nil {
		err = w.out.flush()
	}
	if err == nil {
		err = w.writeMetadata()
	}
	w.err = finish(w.f, w.path, err)
	return w.err
}

func (w *sparseWriter) writeMetadata() error {
	// Every grain table is preallocated; tables never written read as
	// zeros, i.e. all grains unallocated.
	gd := make([]byte, (w.gdCount*4+sector-1)/sector*sector)
	rgd := make([]byte, len(gd))
	for i := uint64(0); i < w.gdCount; i++ {
		binary.LittleEndian.PutUint32(gd[i*4:], uint32(w.gtSec+i*wGTSectors))
		binary.LittleEndian.PutUint32(rgd[i*4:], uint32(w.rgtSec+i*wGTSectors))
	}
	desc := marshalDescriptor(newCID(), "monolithicSparse", w.h.Capacity, "SPARSE", filepath.Base(w.path))
	db := make([]byte, wDescSectors*sector)
	copy(db, desc)
	for _, b := range []struct {
		data []byte
		sec  uint64
	}{{gd, w.gdSec}, {rgd, w.rgdSec}, {db, wDescOffset}, {w.h.marshal(), 0}} {
		if _, err := w.f.WriteAt(b.data, int64(b.sec)*sector); err != nil {
			return err
		}
	}
	return nil
}

// streamWriter writes a VMware-style streamOptimized VMDK.
type streamWriter struct {
	f       *os.File
	path    string
	size    int64
	h       header
	gd      []uint32
	gtIndex int
	gt      []uint32
	grains  grainBuffer
	out     appender
	pending []*pendingGrain
	free    []*pendingGrain
	zws     []*zlib.Writer // one per compressing goroutine
	err     error
	closed  bool
}

func newStreamWriter(path string, size int64) (*streamWriter, error) {
	capacity := uint64(size+sector-1) / sector
	h := header{Version: 3, Flags: flagNewlineTest | flagCompressed | flagMarkers, Capacity: capacity,
		GrainSize: wGrainSectors, DescriptorOffset: wDescOffset, DescriptorSize: wDescSectors,
		NumGTEsPerGT: wGTEs, GDOffset: gdAtEnd, OverHead: wOverhead, CompressAlgorithm: compressDeflate}
	if capacity > maxFileSectors {
		return nil, fmt.Errorf("create %s: %d bytes is too large for a stream-optimized VMDK", path, size)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	w := &streamWriter{f: f, path: path, size: size, h: h, gd: make([]uint32, h.gdEntries()),
		gtIndex: -1, gt: make([]uint32, wGTEs)}
	for range runtime.GOMAXPROCS(0) {
		zw, _ := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed)
		w.zws = append(w.zws, zw)
	}
	w.grains = grainBuffer{path: path, size: size, cur: -1, buf: make([]byte, wGrainBytes), emit: w.emit}
	// Header and descriptor first, so the file streams front to back.
	head := make([]byte, wOverhead*sector)
	copy(head, h.marshal())
	copy(head[wDescOffset*sector:], marshalDescriptor(newCID(), "streamOptimized", capacity, "SPARSE", filepath.Base(path)))
	w.out = appender{f: f}
	if err := w.out.write(head); err != nil {
		f.Close()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return w, nil
}

func (w *streamWriter) Size() int64 { return w.size }

func (w *streamWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.grains.check(p, off); err != nil {
		return 0, err
	}
	n, err := w.grains.write(p, off)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Grains are compressed in batches, in parallel on all cores, and
// appended in order.
const batchGrains = 32

type pendingGrain struct {
	g    int64
	data []byte
	rec  bytes.Buffer // marker + zlib data + padding
}

// emit queues grain g for compression.
func (w *streamWriter) emit(g int64, data []byte) error {
	var pg *pendingGrain
	if n := len(w.free); n > 0 {
		pg, w.free = w.free[n-1], w.free[:n-1]
	} else {
		pg = &pendingGrain{data: make([]byte, wGrainBytes)}
	}
	pg.g = g
	copy(pg.data, data)
	w.pending = append(w.pending, pg)
	if len(w.pending) >= batchGrains {
		return w.flushPending()
	}
	return nil
}

// flushPending compresses the queued grains and appends them.
func (w *streamWriter) flushPending() error {
	if len(w.pending) == 0 {
		return nil
	}
	workers := min(len(w.zws), len(w.pending))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(w.pending); i += workers {
				if err := compressGrain(w.zws[k], w.pending[i]); err != nil {
					errs[k] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("compress grain: %w", err)
	}
	for _, pg := range w.pending {
		if i := int(pg.g / wGTEs); i != w.gtIndex {
			if err := w.flushGT(); err != nil {
				return err
			}
			w.gtIndex = i
		}
		w.gt[pg.g%wGTEs] = uint32(w.out.pos() / sector)
		if err := w.out.write(pg.rec.Bytes()); err != nil {
			return fmt.Errorf("write %s: %w", w.path, err)
		}
		w.free = append(w.free, pg)
	}
	w.pending = w.pending[:0]
	return nil
}

// compressGrain builds the stream record of a grain: a 12-byte marker
// (virtual sector, compressed size), the zlib stream, zero padding to a
// sector.
func compressGrain(zw *zlib.Writer, pg *pendingGrain) error {
	pg.rec.Reset()
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[0:], uint64(pg.g)*wGrainSectors)
	pg.rec.Write(hdr[:])
	zw.Reset(&pg.rec)
	if _, err := zw.Write(pg.data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	rec := pg.rec.Bytes()
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(rec)-12))
	if pad := len(rec) % sector; pad != 0 {
		pg.rec.Write(make([]byte, sector-pad))
	}
	return nil
}

// flushGT appends the current grain table behind a GT marker.
func (w *streamWriter) flushGT() error {
	if w.gtIndex < 0 {
		return nil
	}
	b := make([]byte, sector+wGTEs*4)
	copy(b, marker(wGTSectors, markerGT))
	for i, v := range w.gt {
		binary.LittleEndian.PutUint32(b[sector+i*4:], v)
	}
	w.gd[w.gtIndex] = uint32(w.out.pos()/sector) + 1
	if err := w.out.write(b); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	clear(w.gt)
	w.gtIndex = -1
	return nil
}

// Close appends the last grain and table, the grain directory, the
// footer and the end-of-stream marker, and syncs the file.
func (w *streamWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.grains.flush()
	}
	if err == nil {
		err = w.flushPending()
	}
	if err == nil {
		err = w.flushGT()
	}
	if err == nil {
		gdSectors := (uint64(len(w.gd))*4 + sector - 1) / sector
		b := make([]byte, (1+gdSectors)*sector)
		copy(b, marker(gdSectors, markerGD))
		for i, v := range w.gd {
			binary.LittleEndian.PutUint32(b[sector+i*4:], v)
		}
		gdSec := uint64(w.out.pos()/sector) + 1
		footer := w.h
		footer.GDOffset = gdSec
		b = append(b, marker(1, markerFooter)...)
		b = append(b, footer.marshal()...)
		b = append(b, marker(0, markerEOS)...)
		if err = w.out.write(b); err == nil {
			err = w.out.flush()
		}
	}
	w.err = finish(w.f, w.path, err)
	return w.err
}
