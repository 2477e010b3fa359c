package vhd

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/zeros"
)

// DefaultBlockSize is the block size of dynamic VHDs written by [Create].
const DefaultBlockSize = 2 << 20

// Writer writes a fixed or dynamic VHD. It implements [vmdisk.Writer].
//
// A dynamic Writer keeps one block in memory; when a write moves to another
// block the buffered block is appended to the file unless it is all zeros,
// so zero ranges cost no space. Writes in ascending order are cheapest, but
// any order works. Close writes the BAT, the headers and the footers.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	size   int64
	fixed  bool
	footer footer
	closed bool
	failed error

	// Dynamic images.
	blockSize int64
	bat       []uint32
	batOff    int64
	batBytes  int64
	next      int64 // file offset of the next new block
	cur       int64 // buffered block, -1 for none
	buf       []byte
	dirty     bool
}

var _ vmdisk.Writer = (*Writer)(nil)

// Create makes a VHD of the given virtual size at path, replacing any file
// there. variant is "dynamic" (the default when "") or "fixed". size must be
// a positive multiple of 512 and at most [MaxSize].
func Create(path string, size int64, variant string) (*Writer, error) {
	var fixed bool
	switch variant {
	case "", "dynamic":
	case "fixed":
		fixed = true
	default:
		return nil, fmt.Errorf("create %s: unknown vhd variant %q (want dynamic or fixed)", path, variant)
	}
	if size <= 0 || size%sectorSize != 0 {
		return nil, fmt.Errorf("create %s: vhd size %d is not a positive multiple of 512", path, size)
	}
	if size > MaxSize {
		return nil, fmt.Errorf("create %s: vhd size %d exceeds the format's maximum %d", path, size, int64(MaxSize))
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create vhd: %w", err)
	}
	w := &Writer{f: f, path: path, size: size, fixed: fixed, cur: -1}
	c, h, s := geometry(size)
	w.footer = footer{
		Features:       2,
		Version:        0x00010000,
		DataOffset:     footerSize,
		Timestamp:      uint32(time.Since(vhdEpoch) / time.Second),
		Creator:        [4]byte{'w', 'i', 'n', ' '},
		CreatorVersion: 0x000a0000,
		CreatorOS:      [4]byte{'W', 'i', '2', 'k'},
		OriginalSize:   uint64(size),
		CurrentSize:    uint64(size),
		Cylinders:      c,
		Heads:          h,
		SectorsPerTrk:  s,
		DiskType:       diskDynamic,
	}
	if _, err := rand.Read(w.footer.UniqueID[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if fixed {
		w.footer.DataOffset = 0xFFFFFFFFFFFFFFFF
		w.footer.DiskType = diskFixed
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("create vhd: %w", err)
		}
		return w, nil
	}
	w.blockSize = DefaultBlockSize
	n := (size + w.blockSize - 1) / w.blockSize
	w.bat = make([]uint32, n)
	for i := range w.bat {
		w.bat[i] = batUnused
	}
	w.batOff = footerSize + dynHeaderSize
	w.batBytes = (4*n + sectorSize - 1) / sectorSize * sectorSize
	w.next = w.batOff + w.batBytes
	w.buf = make([]byte, w.blockSize)
	return w, nil
}

// Size returns the virtual size the writer was created with.
func (w *Writer) Size() int64 { return w.size }

// WriteAt stores guest bytes at off.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, fmt.Errorf("write %s: writer is closed", w.path)
	}
	if w.failed != nil {
		return 0, w.failed
	}
	if off < 0 || off > w.size || int64(len(p)) > w.size-off {
		return 0, fmt.Errorf("write %s: %d bytes at offset %d beyond the disk size %d", w.path, len(p), off, w.size)
	}
	if w.fixed {
		if zeros.Is(p) {
			return len(p), nil
		}
		n, err := w.f.WriteAt(p, off)
		if err != nil {
			w.failed = fmt.Errorf("write %s: %w", w.path, err)
			return n, w.failed
		}
		return n, nil
	}
	done := 0
	for done < len(p) {
		blk := off / w.blockSize
		in := off % w.blockSize
		if blk != w.cur {
			if err := w.load(blk); err != nil {
				w.failed = err
				return done, err
			}
		}
		n := copy(w.buf[in:], p[done:])
		w.dirty = true
		done += n
		off += int64(n)
	}
	return done, nil
}

// load makes blk the buffered block, flushing the previous one.
func (w *Writer) load(blk int64) error {
	if err := w.flush(); err != nil {
		return err
	}
	w.cur = blk
	w.dirty = false
	if e := w.bat[blk]; e != batUnused {
		if _, err := w.f.ReadAt(w.buf, int64(e)*sectorSize+sectorSize); err != nil {
			return fmt.Errorf("write %s: reread block %d: %w", w.path, blk, err)
		}
		return nil
	}
	clear(w.buf)
	return nil
}

// flush writes the buffered block: in place when it is allocated, appended
// with an all-ones sector bitmap when it holds data, not at all when it is
// unallocated and all zeros.
func (w *Writer) flush() error {
	if w.cur < 0 || !w.dirty {
		return nil
	}
	off := int64(w.bat[w.cur]) * sectorSize
	if w.bat[w.cur] == batUnused {
		if zeros.Is(w.buf) {
			w.dirty = false
			return nil
		}
		off = w.next
		bm := make([]byte, sectorSize)
		for i := range bm {
			bm[i] = 0xFF
		}
		if _, err := w.f.WriteAt(bm, off); err != nil {
			return fmt.Errorf("write %s: %w", w.path, err)
		}
		w.bat[w.cur] = uint32(off / sectorSize)
		w.next += sectorSize + w.blockSize
	}
	if _, err := w.f.WriteAt(w.buf, off+sectorSize); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.dirty = false
	return nil
}

// Close finishes the image (BAT, header, footers), syncs and closes it.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.finish()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", w.path, cerr)
	}
	return err
}

func (w *Writer) finish() error {
	if w.failed != nil {
		return w.failed
	}
	ft := w.footer.marshal()
	if w.fixed {
		if _, err := w.f.WriteAt(ft, w.size); err != nil {
			return fmt.Errorf("write %s: footer: %w", w.path, err)
		}
		return w.sync()
	}
	if err := w.flush(); err != nil {
		return err
	}
	bat := make([]byte, w.batBytes)
	for i := range bat {
		bat[i] = 0xFF
	}
	for i, e := range w.bat {
		binary.BigEndian.PutUint32(bat[4*i:], e)
	}
	h := dynHeader{
		TableOffset:     uint64(w.batOff),
		HeaderVersion:   0x00010000,
		MaxTableEntries: uint32(len(w.bat)),
		BlockSize:       uint32(w.blockSize),
	}
	// Blocks were appended before the tables were known, so the layout
	// is fixed: footer copy, header, BAT, blocks, footer.
	parts := []struct {
		b   []byte
		off int64
	}{
		{bat, w.batOff},
		{h.marshal(), footerSize},
		{ft, 0},
		{ft, w.next},
	}
	for _, p := range parts {
		if _, err := w.f.WriteAt(p.b, p.off); err != nil {
			return fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	if err := w.f.Truncate(w.next + footerSize); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return w.sync()
}

func (w *Writer) sync() error {
	if err := w.f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	return nil
}
