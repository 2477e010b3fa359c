// Package blockmap reads the guest bytes of a disk image that maps the
// disk in blocks of one fixed size, each either stored in the image file,
// absent (the parent's bytes show through, or zeros without a parent),
// zero, or partly stored with a sector bitmap saying which sectors are
// (differencing disks). VHD and VHDX are such images: they differ in how
// they find a block and its bitmap, which they give a [Map] as functions,
// and share how a read is split, served and reported as extents.
package blockmap

import (
	"fmt"
	"io"
	"sync"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/extents"
)

// State says where the bytes of a block are.
type State uint8

const (
	// Absent blocks read from the parent, or as zeros without one.
	Absent State = iota
	// Present blocks are stored whole in the file.
	Present
	// Partial blocks are stored in the file, but only the sectors whose
	// bitmap bit is set hold data; the others read from the parent.
	Partial
	// Zero blocks read as zeros and are not allocated.
	Zero
)

// Block locates one block.
type Block struct {
	State State
	// Off is the file offset of the block's first byte (Present, Partial).
	Off int64
}

// bitmapCacheBlocks bounds the number of sector bitmaps kept in memory.
const bitmapCacheBlocks = 1024

// Map serves reads of a block-mapped disk. Fill in the exported fields
// before the first read and do not change them afterwards; ReadAt and
// Extents are then safe for concurrent use (as far as File and Parent are).
type Map struct {
	// Path names the image in errors.
	Path string
	// Size is the virtual disk size; BlockSize the size of a block.
	Size, BlockSize int64
	// File holds the blocks and bitmaps.
	File io.ReaderAt
	// Parent supplies Absent blocks and unset bitmap sectors; nil reads
	// them as zeros.
	Parent vmdisk.Image
	// Lookup locates block b (0 ≤ b < ceil(Size/BlockSize)).
	Lookup func(b int64) Block

	// Sector bitmaps of Partial blocks: BitmapOffset gives the file offset
	// of block b's bitmap of BitmapBytes bytes, one bit per SectorSize
	// bytes of the block, most significant bit first when MSBFirst is set,
	// least significant first otherwise.
	BitmapOffset func(b int64) int64
	BitmapBytes  int64
	SectorSize   int64
	MSBFirst     bool

	bmMu    sync.Mutex
	bmCache map[int64][]byte
}

// ReadAt reads guest bytes at off, as [io.ReaderAt] describes.
func (m *Map) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", m.Path, off)
	}
	if off >= m.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > m.Size-off {
		n = int(m.Size - off)
	}
	q := p[:n]
	for len(q) > 0 {
		b := off / m.BlockSize
		in := off % m.BlockSize
		k := min(int64(len(q)), m.BlockSize-in)
		if err := m.readBlock(q[:k], b, in); err != nil {
			return 0, err
		}
		q = q[k:]
		off += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readBlock reads p from block b, starting in bytes into it.
func (m *Map) readBlock(p []byte, b, in int64) error {
	blk := m.Lookup(b)
	switch blk.State {
	case Present:
		return m.readData(p, blk.Off+in)
	case Absent:
		return m.readParent(p, b*m.BlockSize+in)
	case Partial:
	default:
		clear(p)
		return nil
	}
	bm, err := m.bitmap(b)
	if err != nil {
		return err
	}
	ss := m.SectorSize
	for len(p) > 0 {
		s := in / ss
		own := m.bit(bm, s)
		// Extend the run while the bitmap bit stays the same.
		end := (s + 1) * ss
		for end < in+int64(len(p)) && m.bit(bm, end/ss) == own {
			end += ss
		}
		n := min(end-in, int64(len(p)))
		if own {
			err = m.readData(p[:n], blk.Off+in)
		} else {
			err = m.readParent(p[:n], b*m.BlockSize+in)
		}
		if err != nil {
			return err
		}
		p = p[n:]
		in += n
	}
	return nil
}

// bit reports bit i of a sector bitmap.
func (m *Map) bit(bm []byte, i int64) bool {
	if m.MSBFirst {
		return bm[i/8]&(0x80>>(i%8)) != 0
	}
	return bm[i/8]&(1<<(i%8)) != 0
}

// readData reads file bytes that the block map says exist.
func (m *Map) readData(p []byte, off int64) error {
	n, err := m.File.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %s at %d: %w", m.Path, off, err)
}

// readParent reads guest bytes from the parent; beyond its size they are
// zeros.
func (m *Map) readParent(p []byte, off int64) error {
	if m.Parent == nil {
		clear(p)
		return nil
	}
	n, err := m.Parent.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return err
	}
	clear(p[n:])
	return nil
}

// bitmap returns the sector bitmap of Partial block b.
func (m *Map) bitmap(b int64) ([]byte, error) {
	m.bmMu.Lock()
	bm, ok := m.bmCache[b]
	m.bmMu.Unlock()
	if ok {
		return bm, nil
	}
	bm = make([]byte, m.BitmapBytes)
	if err := m.readData(bm, m.BitmapOffset(b)); err != nil {
		return nil, err
	}
	m.bmMu.Lock()
	if m.bmCache == nil || len(m.bmCache) >= bitmapCacheBlocks {
		m.bmCache = make(map[int64][]byte)
	}
	m.bmCache[b] = bm
	m.bmMu.Unlock()
	return bm, nil
}

// Extents returns the allocated ranges of the disk: Present blocks, the
// set sectors of Partial blocks, and the parent's extents where the
// parent shows through (Absent blocks, unset sectors).
func (m *Map) Extents() ([]vmdisk.Extent, error) {
	var own, deferred []vmdisk.Extent
	ss := m.SectorSize
	for b := range (m.Size + m.BlockSize - 1) / m.BlockSize {
		start := b * m.BlockSize
		blk := m.Lookup(b)
		switch blk.State {
		case Present:
			own = extents.Append(own, start, m.BlockSize)
		case Absent:
			deferred = extents.Append(deferred, start, m.BlockSize)
		case Partial:
			bm, err := m.bitmap(b)
			if err != nil {
				return nil, err
			}
			for s := range m.BlockSize / ss {
				if m.bit(bm, s) {
					own = extents.Append(own, start+s*ss, ss)
				} else {
					deferred = extents.Append(deferred, start+s*ss, ss)
				}
			}
		}
	}
	own = extents.Clip(own, m.Size)
	if m.Parent == nil {
		return own, nil
	}
	pe, err := m.Parent.Extents()
	if err != nil {
		return nil, err
	}
	return extents.Union(own, extents.Intersect(extents.Clip(deferred, m.Size), pe)), nil
}
