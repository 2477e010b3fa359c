// Package qcow2 reads QEMU copy-on-write disk images, versions 2 and 3.
//
// A qcow2 file maps the guest disk in clusters (512 bytes to 2 MiB, 64 KiB
// by default) through a two-level table: the L1 table points to L2 tables,
// whose entries give each cluster's place in the file. An L2 entry is
// either a plain data cluster, a compressed cluster (raw deflate or zstd),
// a zero cluster (version 3: reads as zeros and hides the backing file), or
// unallocated, in which case the cluster comes from the backing file, or is
// zeros when there is none. With extended L2 entries each cluster is split
// into 32 subclusters that are allocated, zero or unallocated on their own.
//
// The reader validates every table it uses against the file size and
// reports malformed images as *vmdisk.FormatError naming the structure and
// its offset. It refuses encrypted images, external data files, unknown
// incompatible features and images qemu marked corrupt (all wrapping
// vmdisk.ErrUnsupported). An image with the dirty bit set, or whose write
// lock qemu holds, is in use: Open fails with vmdisk.ErrInUse unless
// OpenOptions.Force is set.
//
// Backing files are opened with vmdisk.Open, relative to the overlay's
// directory, in the format the overlay names (else detected), one level
// deeper so that loops end at vmdisk.MaxChainDepth. Internal snapshots are
// ignored: only the active L1 table is read.
package qcow2

import (
	"bytes"
	"compress/flate"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/chain"
	"github.com/bunkerbackup/bunker/vmdisk/internal/extents"
	"github.com/bunkerbackup/bunker/vmdisk/internal/lockcheck"
	"github.com/bunkerbackup/bunker/vmdisk/part"
	"github.com/klauspost/compress/zstd"
)

func init() {
	vmdisk.Register(vmdisk.Format{
		Name:  "qcow2",
		Probe: Probe,
		Open: func(path string, opts vmdisk.OpenOptions) (vmdisk.Image, error) {
			return Open(path, opts)
		},
		Priority: 10,
	})
}

// Probe reports whether head starts with the qcow2 magic. Any version is
// claimed, so that Open refuses an unknown version by name instead of the
// file being taken for a raw disk.
func Probe(head, _ []byte, size int64) bool {
	return len(head) >= 8 && string(head[:4]) == Magic
}

// Image is an open qcow2 image. It implements vmdisk.Image.
type Image struct {
	path       string
	f          *os.File // nil when opened over a plain io.ReaderAt
	r          io.ReaderAt
	fileSize   int64
	h          *header
	l1         []uint64 // the l1Needed entries that map the virtual disk
	backing    vmdisk.Image
	bsize      int64 // guest bytes readable from backing (min of both sizes)
	info       vmdisk.Info
	l2         *l2Cache
	zcache     *clusterCache
	sectorSize int
}

var _ vmdisk.Image = (*Image)(nil)

// backingOpener opens a backing file; tests replace it.
type backingOpener func(path, format string, opts vmdisk.OpenOptions) (vmdisk.Image, error)

// BackingError reports a backing file that could not be opened. Errors
// from deeper in a chain are passed up unchanged, so the message names the
// link that failed rather than every image above it.
type BackingError struct {
	Overlay string // the image naming the backing file
	Backing string // the backing file's resolved path
	Err     error
}

func (e *BackingError) Error() string {
	return fmt.Sprintf("open backing file %s of %s: %v", e.Backing, e.Overlay, e.Err)
}

func (e *BackingError) Unwrap() error { return e.Err }

// Open opens the qcow2 image at path.
func Open(path string, opts vmdisk.OpenOptions) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// Seek rather than Stat: a qcow2 may live on a block device (an LVM
	// volume), whose Stat size is 0.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("size of %s: %w", path, err)
	}
	var reasons []string
	if holder, err := lockcheck.Check(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("check locks on %s: %w", path, err)
	} else if holder != "" {
		reasons = append(reasons, holder)
	}
	img, err := open(f, size, path, opts, reasons, vmdisk.Open)
	if err != nil {
		f.Close()
		return nil, err
	}
	img.f = f
	return img, nil
}

// open parses the image behind r. reasons lists in-use findings made by
// the caller (file locks).
func open(r io.ReaderAt, fileSize int64, path string, opts vmdisk.OpenOptions, reasons []string, openBacking backingOpener) (*Image, error) {
	h, err := parseHeader(r, fileSize, path)
	if err != nil {
		return nil, err
	}
	if h.incompat&incompatDirty != 0 {
		reasons = append(reasons, "qcow2 dirty bit is set: the image is open for writing by qemu, or qemu stopped without closing it")
	}
	if len(reasons) > 0 && !opts.Force {
		return nil, fmt.Errorf("%s: %s: %w", path, strings.Join(reasons, "; "), vmdisk.ErrInUse)
	}
	img := &Image{
		path:     path,
		r:        r,
		fileSize: fileSize,
		h:        h,
		info: vmdisk.Info{
			Format:  "qcow2",
			Variant: fmt.Sprintf("v%d", h.version),
			Files:   []string{path},
			InUse:   len(reasons) > 0,
			Reasons: reasons,
		},
		l2:     newL2Cache(h.clusterSize),
		zcache: &clusterCache{},
	}
	if err := img.loadL1(); err != nil {
		return nil, err
	}
	if h.backingName != "" {
		if err := img.openBacking(opts, openBacking); err != nil {
			return nil, err
		}
	}
	// qcow2 does not record the guest's sector size; a 4Kn GPT tells.
	img.sectorSize = part.GuessSectorSize(img, h.size)
	return img, nil
}

// qemuFormats maps qemu driver names in the backing-format extension to
// registered format names.
var qemuFormats = map[string]string{
	"qcow2": "qcow2", "raw": "raw", "file": "raw", "host_device": "device",
	"vmdk": "vmdk", "vpc": "vhd", "vhdx": "vhdx",
}

func (img *Image) openBacking(opts vmdisk.OpenOptions, openBacking backingOpener) error {
	name := img.h.backingName
	if strings.HasPrefix(name, "json:") || strings.Contains(name, "://") {
		return fmt.Errorf("%s: backing file %q is not a local file: %w", img.path, name, vmdisk.ErrUnsupported)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return formatErr(img.path, "backing file name", int64(img.h.backingOffset), "name contains a NUL byte")
	}
	bpath := name
	if !filepath.IsAbs(bpath) {
		bpath = filepath.Join(filepath.Dir(img.path), bpath)
	}
	format := ""
	if img.h.backingFormat != "" {
		var ok bool
		if format, ok = qemuFormats[img.h.backingFormat]; !ok {
			return fmt.Errorf("%s: backing file %s has format %q: %w", img.path, bpath, img.h.backingFormat, vmdisk.ErrUnsupported)
		}
	}
	b, err := openBacking(bpath, format, vmdisk.OpenOptions{Force: opts.Force, Depth: opts.Depth + 1})
	if err != nil {
		var be *BackingError
		if errors.As(err, &be) {
			return err
		}
		return &BackingError{Overlay: img.path, Backing: bpath, Err: err}
	}
	img.backing = b
	img.bsize = min(b.Size(), img.h.size)
	chain.Inherit(&img.info, b.Info())
	return nil
}

// loadL1 reads the L1 entries that map the virtual disk and validates
// every L2 table offset.
func (img *Image) loadL1() error {
	h := img.h
	if h.l1Needed == 0 {
		return nil
	}
	buf := make([]byte, h.l1Needed*8)
	if n, err := img.r.ReadAt(buf, h.l1Offset); n < len(buf) {
		return &vmdisk.FormatError{Format: "qcow2", Path: img.path, Struct: "L1 table", Offset: h.l1Offset, Msg: "read failed", Err: err}
	}
	img.l1 = make([]uint64, h.l1Needed)
	for i := range img.l1 {
		e := binary.BigEndian.Uint64(buf[i*8:])
		off := int64(e & offsetMask)
		at := h.l1Offset + int64(i)*8
		if off != 0 {
			if off%h.clusterSize != 0 {
				return formatErr(img.path, "L1 table", at, "entry %d: L2 table offset %#x is not cluster aligned", i, off)
			}
			if off > img.fileSize-h.clusterSize {
				return formatErr(img.path, "L1 table", at, "entry %d: L2 table at %#x extends beyond the end of the file (%d bytes)", i, off, img.fileSize)
			}
		}
		img.l1[i] = uint64(off)
	}
	return nil
}

// Size returns the virtual disk size.
func (img *Image) Size() int64 { return img.h.size }

// SectorSize returns the guest's logical sector size: qcow2 does not
// record it, so it is 4096 when the disk holds a GPT for 4096-byte sectors
// and 512 otherwise.
func (img *Image) SectorSize() int { return img.sectorSize }

// Info describes the image and its backing chain.
func (img *Image) Info() vmdisk.Info {
	i := img.info
	i.Files = append([]string(nil), i.Files...)
	i.Reasons = append([]string(nil), i.Reasons...)
	return i
}

// ClusterSize returns the cluster size in bytes.
func (img *Image) ClusterSize() int64 { return img.h.clusterSize }

// BackingFile returns the backing file name as stored in the image ("" for none).
func (img *Image) BackingFile() string { return img.h.backingName }

// Close closes the image and its backing chain.
func (img *Image) Close() error {
	var err error
	if img.backing != nil {
		err = img.backing.Close()
	}
	if img.f != nil {
		if cerr := img.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// kind classifies a (sub)cluster.
type kind uint8

const (
	kindUnallocated kind = iota // from the backing file, else zeros
	kindZero                    // reads as zeros
	kindData                    // at host offset
	kindCompressed              // compressed cluster
)

// mapping says where the guest range [off, off+n) lives.
type mapping struct {
	kind  kind
	n     int64 // bytes, up to the end of the (sub)cluster
	host  int64 // kindData: host offset of off; kindCompressed: host offset of the compressed data
	csize int64 // kindCompressed: compressed bytes
	cl    int64 // kindCompressed: guest offset of the cluster start
}

// lookup maps the guest offset off (< Size) to its (sub)cluster.
func (img *Image) lookup(off int64) (mapping, error) {
	h := img.h
	cl := off / h.clusterSize
	inCluster := off % h.clusterSize
	l1i := cl / h.l2Entries
	l2i := cl % h.l2Entries
	clusterEnd := min(h.clusterSize-inCluster, h.size-off)
	l2off := int64(img.l1[l1i])
	if l2off == 0 {
		// A whole L2 table's worth is unallocated.
		n := (l1i+1)*h.l2Entries*h.clusterSize - off
		return mapping{kind: kindUnallocated, n: min(n, h.size-off)}, nil
	}
	table, err := img.table(l1i, l2off)
	if err != nil {
		return mapping{}, err
	}
	entryAt := l2off + l2i*h.l2EntrySize
	e := binary.BigEndian.Uint64(table[l2i*h.l2EntrySize:])
	structure := func() string { return fmt.Sprintf("L2 table %d", l1i) }

	if e&(1<<62) != 0 {
		x := 62 - (h.clusterBits - 8)
		coff := int64(e & (1<<x - 1))
		sectors := int64((e>>x)&(1<<(h.clusterBits-8)-1)) + 1
		csize := sectors*512 - coff&511
		if coff >= img.fileSize {
			return mapping{}, formatErr(img.path, structure(), entryAt, "entry %d: compressed cluster at %#x beyond the end of the file (%d bytes)", l2i, coff, img.fileSize)
		}
		csize = min(csize, img.fileSize-coff)
		return mapping{kind: kindCompressed, n: clusterEnd, host: coff, csize: csize, cl: cl * h.clusterSize}, nil
	}
	host := int64(e & offsetMask)
	if host != 0 && host%h.clusterSize != 0 {
		return mapping{}, formatErr(img.path, structure(), entryAt, "entry %d: data cluster offset %#x is not cluster aligned", l2i, host)
	}
	if host != 0 && host >= img.fileSize {
		return mapping{}, formatErr(img.path, structure(), entryAt, "entry %d: data cluster at %#x beyond the end of the file (%d bytes)", l2i, host, img.fileSize)
	}
	if !h.extendedL2 {
		switch {
		case e&1 != 0:
			return mapping{kind: kindZero, n: clusterEnd}, nil
		case host == 0:
			return mapping{kind: kindUnallocated, n: clusterEnd}, nil
		default:
			return mapping{kind: kindData, n: clusterEnd, host: host + inCluster}, nil
		}
	}
	bitmap := binary.BigEndian.Uint64(table[l2i*h.l2EntrySize+8:])
	alloc, zero := uint32(bitmap), uint32(bitmap>>32)
	if alloc&zero != 0 {
		return mapping{}, formatErr(img.path, structure(), entryAt, "entry %d: subclusters both allocated and zero (bitmap %#016x)", l2i, bitmap)
	}
	if host == 0 && alloc != 0 {
		return mapping{}, formatErr(img.path, structure(), entryAt, "entry %d: allocated subclusters without a host cluster (bitmap %#016x)", l2i, bitmap)
	}
	sc := inCluster / h.subclusterSize
	k := kindUnallocated
	switch {
	case zero&(1<<sc) != 0:
		k = kindZero
	case alloc&(1<<sc) != 0:
		k = kindData
	}
	// Extend over following subclusters of the same kind.
	end := sc + 1
	for end < 32 {
		var k2 kind = kindUnallocated
		switch {
		case zero&(1<<end) != 0:
			k2 = kindZero
		case alloc&(1<<end) != 0:
			k2 = kindData
		}
		if k2 != k {
			break
		}
		end++
	}
	n := min(end*h.subclusterSize-inCluster, clusterEnd)
	m := mapping{kind: k, n: n}
	if k == kindData {
		m.host = host + inCluster
	}
	return m, nil
}

// table returns the L2 table at l2off (from the cache or the file).
func (img *Image) table(l1i, l2off int64) ([]byte, error) {
	if t := img.l2.get(l2off); t != nil {
		return t, nil
	}
	t := make([]byte, img.h.clusterSize)
	if n, err := img.r.ReadAt(t, l2off); n < len(t) {
		return nil, &vmdisk.FormatError{Format: "qcow2", Path: img.path, Struct: fmt.Sprintf("L2 table %d", l1i), Offset: l2off, Msg: "read failed", Err: err}
	}
	img.l2.put(l2off, t)
	return t, nil
}

// ReadAt reads guest bytes. Unallocated clusters come from the backing
// file (zeros beyond its size) or are zeros.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", img.path, off)
	}
	if off >= img.h.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > img.h.size-off {
		p = p[:img.h.size-off]
		eof = io.EOF
	}
	// Pending runs of contiguous host data or backing reads, flushed when
	// the next piece does not continue them.
	var (
		run     kind
		runBuf  []byte
		runHost int64
		runOff  int64
	)
	flush := func() error {
		if len(runBuf) == 0 {
			return nil
		}
		var err error
		switch run {
		case kindData:
			err = img.readHost(runBuf, runHost)
		case kindUnallocated:
			err = img.readBacking(runBuf, runOff)
		}
		runBuf = nil
		return err
	}
	// fail returns the number of bytes known good before err.
	done := 0
	fail := func(err error) (int, error) {
		if len(runBuf) > 0 {
			start := int(runOff - off)
			if ferr := flush(); ferr != nil {
				return start, ferr
			}
		}
		return done, err
	}
	for done < len(p) {
		g := off + int64(done)
		m, err := img.lookup(g)
		if err != nil {
			return fail(err)
		}
		n := int(min(m.n, int64(len(p)-done)))
		piece := p[done : done+n]
		switch m.kind {
		case kindZero, kindCompressed:
			if len(runBuf) > 0 {
				start := int(runOff - off)
				if err := flush(); err != nil {
					return start, err
				}
			}
			if m.kind == kindZero {
				clear(piece)
				break
			}
			data, err := img.cluster(m)
			if err != nil {
				return done, err
			}
			copy(piece, data[g-m.cl:])
		case kindData, kindUnallocated:
			contiguous := len(runBuf) > 0 && run == m.kind &&
				runOff+int64(len(runBuf)) == g &&
				(m.kind != kindData || runHost+int64(len(runBuf)) == m.host)
			if contiguous {
				runBuf = p[done-len(runBuf) : done+n]
			} else {
				if len(runBuf) > 0 {
					start := int(runOff - off)
					if err := flush(); err != nil {
						return start, err
					}
				}
				run, runBuf, runHost, runOff = m.kind, piece, m.host, g
			}
		}
		done += n
	}
	if len(runBuf) > 0 {
		start := int(runOff - off)
		if err := flush(); err != nil {
			return start, err
		}
	}
	return len(p), eof
}

// readHost reads data clusters from the image file.
func (img *Image) readHost(p []byte, host int64) error {
	n, err := img.r.ReadAt(p, host)
	if n < len(p) {
		if err == nil || err == io.EOF {
			return formatErr(img.path, "data cluster", host+int64(n), "data ends %d bytes early at the end of the file", len(p)-n)
		}
		return fmt.Errorf("read %s at %d: %w", img.path, host, err)
	}
	return nil
}

// readBacking reads unallocated guest bytes from the backing file.
func (img *Image) readBacking(p []byte, off int64) error {
	if img.backing == nil || off >= img.bsize {
		clear(p)
		return nil
	}
	k := int(min(int64(len(p)), img.bsize-off))
	n, err := img.backing.ReadAt(p[:k], off)
	if n < k {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read backing file of %s at %d: %w", img.path, off, err)
	}
	clear(p[k:])
	return nil
}

var (
	flatePool sync.Pool
	zstdPool  sync.Pool
)

// cluster returns the decompressed cluster described by m.
func (img *Image) cluster(m mapping) ([]byte, error) {
	if c := img.zcache.get(m.host); c != nil {
		return c, nil
	}
	comp := make([]byte, m.csize)
	if n, err := img.r.ReadAt(comp, m.host); n < len(comp) {
		return nil, &vmdisk.FormatError{Format: "qcow2", Path: img.path, Struct: "compressed cluster", Offset: m.host, Msg: "read failed", Err: err}
	}
	out := make([]byte, img.h.clusterSize)
	var err error
	if img.h.compression == compressionZstd {
		err = inflateZstd(out, comp)
	} else {
		err = inflateDeflate(out, comp)
	}
	if err != nil {
		return nil, &vmdisk.FormatError{Format: "qcow2", Path: img.path, Struct: "compressed cluster", Offset: m.host,
			Msg: fmt.Sprintf("cannot decompress %d bytes into a %d-byte cluster", len(comp), len(out)), Err: err}
	}
	img.zcache.put(m.host, out)
	return out, nil
}

func inflateDeflate(out, comp []byte) error {
	src := bytes.NewReader(comp)
	var zr io.ReadCloser
	if v := flatePool.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(flate.Resetter).Reset(src, nil); err != nil {
			return err
		}
	} else {
		zr = flate.NewReader(src)
	}
	_, err := io.ReadFull(zr, out)
	if err == nil {
		flatePool.Put(zr)
	}
	return err
}

func inflateZstd(out, comp []byte) error {
	var d *zstd.Decoder
	if v := zstdPool.Get(); v != nil {
		d = v.(*zstd.Decoder)
	} else {
		var err error
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return err
		}
	}
	if err := d.Reset(bytes.NewReader(comp)); err != nil {
		d.Close()
		return err
	}
	_, err := io.ReadFull(d, out)
	if err != nil {
		d.Close()
		return err
	}
	d.Reset(nil)
	zstdPool.Put(d)
	return nil
}

// Extents returns the allocated ranges of the guest disk: data and
// compressed clusters of this image, and the backing file's extents where
// this image leaves clusters unallocated. Zero clusters are not allocated.
func (img *Image) Extents() ([]vmdisk.Extent, error) {
	var own, holes []vmdisk.Extent
	for off := int64(0); off < img.h.size; {
		m, err := img.lookup(off)
		if err != nil {
			return nil, err
		}
		switch m.kind {
		case kindData, kindCompressed:
			own = extents.Append(own, off, m.n)
		case kindUnallocated:
			if img.backing != nil && off < img.bsize {
				holes = extents.Append(holes, off, min(m.n, img.bsize-off))
			}
		}
		off += m.n
	}
	if len(holes) == 0 {
		return own, nil
	}
	bext, err := img.backing.Extents()
	if err != nil {
		return nil, fmt.Errorf("extents of backing file of %s: %w", img.path, err)
	}
	return extents.Union(own, extents.Intersect(holes, bext)), nil
}

// l2Cache keeps recently used L2 tables, bounded in bytes.
type l2Cache struct {
	mu  sync.Mutex
	max int
	m   map[int64]*list.Element
	lru list.List // of *l2Entry, most recent first
}

type l2Entry struct {
	off   int64
	table []byte
}

const l2CacheBytes = 32 << 20

func newL2Cache(clusterSize int64) *l2Cache {
	return &l2Cache{max: int(max(4, l2CacheBytes/clusterSize)), m: map[int64]*list.Element{}}
}

func (c *l2Cache) get(off int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[off]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*l2Entry).table
	}
	return nil
}

func (c *l2Cache) put(off int64, t []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[off]; ok {
		return
	}
	c.m[off] = c.lru.PushFront(&l2Entry{off, t})
	for c.lru.Len() > c.max {
		e := c.lru.Back()
		c.lru.Remove(e)
		delete(c.m, e.Value.(*l2Entry).off)
	}
}

// clusterCache keeps the last few decompressed clusters, so reads that
// split a compressed cluster decompress it once.
type clusterCache struct {
	mu   sync.Mutex
	next int
	offs [8]int64
	data [8][]byte
}

func (c *clusterCache) get(host int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, o := range c.offs {
		if o == host && c.data[i] != nil {
			return c.data[i]
		}
	}
	return nil
}

func (c *clusterCache) put(host int64, d []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offs[c.next], c.data[c.next] = host, d
	c.next = (c.next + 1) % len(c.offs)
}
