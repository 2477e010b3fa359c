package fsread

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"time"

	"github.com/masahiro331/go-ext4-filesystem/ext4"
)

// ext2/3/4 on-disk constants not exported by the library.
const (
	extRootIno        = 2
	extInlineDataFl   = 0x10000000
	extExtentMagic    = 0xf30a
	extMaxExtentDepth = 5
	extUninitLen      = 32768
	// extMaxDirBytes bounds the size of one directory.
	extMaxDirBytes = 1 << 30
)

type extFS struct {
	r        io.ReaderAt
	size     int64
	sb       ext4.Superblock
	bs       int64 // block size
	blocks   int64 // blocks in the file system
	descSize int64
	inoSize  int64
}

// extNode is the driver handle of an ext node.
type extNode struct {
	ino   uint32
	inode *ext4.Inode
}

func openExt(r io.ReaderAt, size int64) (*extFS, error) {
	quietLibs()
	buf := make([]byte, 1024)
	if _, err := r.ReadAt(buf, 1024); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	e := &extFS{r: r, size: size}
	if err := binary.Read(bytes.NewReader(buf), binary.LittleEndian, &e.sb); err != nil {
		return nil, fmt.Errorf("decode superblock: %w", err)
	}
	sb := &e.sb
	if sb.Magic != 0xef53 {
		return nil, fmt.Errorf("no ext2/3/4 superblock: %w", ErrCorrupt)
	}
	if sb.LogBlockSize > 6 {
		return nil, fmt.Errorf("block size 1024<<%d: %w", sb.LogBlockSize, ErrCorrupt)
	}
	e.bs = sb.GetBlockSize()
	e.blocks = sb.GetBlockCount()
	if e.blocks <= 0 || e.blocks > size/e.bs {
		return nil, fmt.Errorf("%d blocks of %d bytes do not fit the %d-byte partition: %w", e.blocks, e.bs, size, ErrCorrupt)
	}
	if sb.InodePerGroup == 0 || sb.BlockPerGroup == 0 || sb.InodeCount == 0 {
		return nil, fmt.Errorf("empty block groups: %w", ErrCorrupt)
	}
	e.inoSize = 128
	if sb.RevLevel > 0 {
		e.inoSize = int64(sb.InodeSize)
	}
	if e.inoSize < 128 || e.inoSize > e.bs || e.inoSize&(e.inoSize-1) != 0 {
		return nil, fmt.Errorf("inode size %d: %w", e.inoSize, ErrCorrupt)
	}
	e.descSize = 32
	if sb.FeatureInCompat64bit() {
		e.descSize = int64(sb.DescSize)
		if e.descSize < 32 || e.descSize > e.bs || e.descSize&(e.descSize-1) != 0 {
			return nil, fmt.Errorf("group descriptor size %d: %w", e.descSize, ErrCorrupt)
		}
	}
	switch {
	case sb.FeatureIncompatCompression():
		return nil, fmt.Errorf("compression feature: %w", ErrUnsupported)
	case sb.FeatureIncompatJournalDev():
		return nil, fmt.Errorf("external journal device, no files: %w", ErrUnsupported)
	}
	return e, nil
}

func (e *extFS) foldCase() bool { return false }

func (e *extFS) warnings() []string {
	if e.sb.FeatureIncompatRecover() {
		return []string{"the journal holds transactions that were not replayed (the file system was not cleanly unmounted): recently written files may be stale or missing"}
	}
	return nil
}

// hasSuper reports whether block group g holds a superblock backup (and
// so, with meta_bg, shifts the group's descriptor block by one).
func (e *extFS) hasSuper(g int64) bool {
	if g <= 1 || !e.sb.FeatureRoCompatSparseSuper() {
		return true
	}
	for _, b := range []int64{3, 5, 7} {
		n := b
		for n < g {
			n *= b
		}
		if n == g {
			return true
		}
	}
	return false
}

// readInode reads inode number ino.
func (e *extFS) readInode(ino uint32) (*ext4.Inode, error) {
	sb := &e.sb
	if ino == 0 || ino > sb.InodeCount {
		return nil, fmt.Errorf("inode %d out of range: %w", ino, ErrCorrupt)
	}
	group := int64(ino-1) / int64(sb.InodePerGroup)
	index := int64(ino-1) % int64(sb.InodePerGroup)
	perBlock := e.bs / e.descSize
	var descBlock int64
	if sb.FeatureIncompatMetaBg() && group/perBlock >= int64(sb.FirstMetaBg) {
		first := group / perBlock * perBlock
		descBlock = int64(sb.FirstDataBlock) + first*int64(sb.BlockPerGroup)
		if e.hasSuper(first) {
			descBlock++
		}
	} else {
		descBlock = int64(sb.FirstDataBlock) + 1 + group/perBlock
	}
	gd := make([]byte, e.descSize)
	if err := e.readFull(gd, descBlock*e.bs+group%perBlock*e.descSize); err != nil {
		return nil, fmt.Errorf("read group descriptor %d: %w", group, err)
	}
	table := int64(binary.LittleEndian.Uint32(gd[8:]))
	if sb.FeatureInCompat64bit() && e.descSize >= 64 {
		table |= int64(binary.LittleEndian.Uint32(gd[0x28:])) << 32
	}
	if table <= 0 || table >= e.blocks {
		return nil, fmt.Errorf("inode table of group %d at block %d: %w", group, table, ErrCorrupt)
	}
	raw := make([]byte, 256)
	if err := e.readFull(raw[:min(e.inoSize, 256)], table*e.bs+index*e.inoSize); err != nil {
		return nil, fmt.Errorf("read inode %d: %w", ino, err)
	}
	inode := new(ext4.Inode)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, inode); err != nil {
		return nil, fmt.Errorf("decode inode %d: %w", ino, err)
	}
	if e.inoSize == 128 {
		inode.ExtraIsize = 0
	}
	return inode, nil
}

func (e *extFS) readFull(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > e.size {
		return fmt.Errorf("read %d bytes at %d: beyond the partition: %w", len(p), off, ErrCorrupt)
	}
	n, err := e.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (e *extFS) node(name string, ino uint32, inode *ext4.Inode) *node {
	m := fs.FileMode(inode.Mode & 0o777)
	if inode.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	if inode.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if inode.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	switch inode.Mode & ext4.FileTypeMask {
	case ext4.FileTypeRegular:
	case ext4.FileTypeDir:
		m |= fs.ModeDir
	case ext4.FileTypeSymlink:
		m |= fs.ModeSymlink
	case ext4.FileTypeCharDevice:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case ext4.FileTypeBlockDevice:
		m |= fs.ModeDevice
	case ext4.FileTypeFifo:
		m |= fs.ModeNamedPipe
	case ext4.FileTypeSocket:
		m |= fs.ModeSocket
	default:
		m |= fs.ModeIrregular
	}
	sec, nsec := int64(int32(inode.Mtime)), int64(0)
	// i_mtime_extra (at 0x88) exists when i_extra_isize covers it: two
	// epoch bits above the 32-bit seconds, then nanoseconds.
	if inode.ExtraIsize >= 0x8c-0x80 {
		sec += int64(inode.MtimeExtra&3) << 32
		nsec = int64(inode.MtimeExtra >> 2)
		if nsec > 999999999 {
			nsec = 0
		}
	}
	size := inode.GetSize()
	if m.IsDir() {
		size = 0
	}
	owner := &Owner{
		UID: uint32(inode.UID) | uint32(inode.UIDHigh)<<16,
		GID: uint32(inode.GID) | uint32(inode.GIDHigh)<<16,
	}
	return &node{name: name, mode: m, size: size, mtime: time.Unix(sec, nsec), id: extNode{ino, inode}, sys: owner}
}

func (e *extFS) root() (*node, error) {
	inode, err := e.readInode(extRootIno)
	if err != nil {
		return nil, err
	}
	return e.node(".", extRootIno, inode), nil
}

// extExtent maps len blocks from logical block lblk to physical block pblk;
// unwritten extents read as zeros.
type extExtent struct {
	lblk, pblk, len int64
	unwritten       bool
}

// mapping returns the sorted block map of inode.
func (e *extFS) mapping(inode *ext4.Inode) ([]extExtent, error) {
	var exts []extExtent
	if inode.UsesExtents() {
		seen := map[int64]bool{}
		if err := e.walkExtents(inode.BlockOrExtents[:], extMaxExtentDepth+1, seen, &exts); err != nil {
			return nil, err
		}
		sort.Slice(exts, func(i, j int) bool { return exts[i].lblk < exts[j].lblk })
	} else {
		var err error
		if exts, err = e.blockMap(inode); err != nil {
			return nil, err
		}
	}
	for i, x := range exts {
		if x.pblk <= 0 || x.pblk+x.len > e.blocks {
			return nil, fmt.Errorf("blocks %d+%d outside the file system: %w", x.pblk, x.len, ErrCorrupt)
		}
		if i > 0 && exts[i-1].lblk+exts[i-1].len > x.lblk {
			return nil, fmt.Errorf("overlapping extents at block %d: %w", x.lblk, ErrCorrupt)
		}
	}
	return exts, nil
}

// blockMap maps an ext2/3 file through its 12 direct and its single,
// double and triple indirect block pointers. Zero pointers are holes. The
// walk follows at most as many pointers as the file system has blocks,
// so crafted pointer trees cannot make it run away.
func (e *extFS) blockMap(inode *ext4.Inode) ([]extExtent, error) {
	le := binary.LittleEndian
	nblocks := (inode.GetSize() + e.bs - 1) / e.bs
	per := e.bs / 4
	budget := e.blocks
	var exts []extExtent
	add := func(l, p int64) error {
		if p == 0 {
			return nil
		}
		if budget--; budget < 0 {
			return fmt.Errorf("block map larger than the file system: %w", ErrCorrupt)
		}
		if k := len(exts) - 1; k >= 0 && exts[k].lblk+exts[k].len == l && exts[k].pblk+exts[k].len == p {
			exts[k].len++
			return nil
		}
		exts = append(exts, extExtent{lblk: l, pblk: p, len: 1})
		return nil
	}
	var walk func(blk int64, level int, first, span int64) error
	walk = func(blk int64, level int, first, span int64) error {
		if blk == 0 || first >= nblocks {
			return nil
		}
		if blk >= e.blocks {
			return fmt.Errorf("indirect block %d outside the file system: %w", blk, ErrCorrupt)
		}
		if budget--; budget < 0 {
			return fmt.Errorf("block map larger than the file system: %w", ErrCorrupt)
		}
		b := make([]byte, e.bs)
		if err := e.readFull(b, blk*e.bs); err != nil {
			return fmt.Errorf("read indirect block %d: %w", blk, err)
		}
		for j := int64(0); j < per && first+j*span < nblocks; j++ {
			p := int64(le.Uint32(b[4*j:]))
			var err error
			if level == 1 {
				err = add(first+j, p)
			} else {
				err = walk(p, level-1, first+j*span, span/per)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	ptr := func(i int) int64 { return int64(le.Uint32(inode.BlockOrExtents[4*i:])) }
	for i := range int64(12) {
		if i < nblocks {
			if err := add(i, ptr(int(i))); err != nil {
				return nil, err
			}
		}
	}
	if err := walk(ptr(12), 1, 12, 1); err != nil {
		return nil, err
	}
	if err := walk(ptr(13), 2, 12+per, per); err != nil {
		return nil, err
	}
	if err := walk(ptr(14), 3, 12+per+per*per, per*per); err != nil {
		return nil, err
	}
	return exts, nil
}

// walkExtents collects the leaf extents of the extent tree node b. Each
// tree block is visited once, so a looping tree cannot hang the walk.
func (e *extFS) walkExtents(b []byte, depthLimit int, seen map[int64]bool, out *[]extExtent) error {
	le := binary.LittleEndian
	if len(b) < 12 || le.Uint16(b) != extExtentMagic {
		return fmt.Errorf("bad extent header: %w", ErrCorrupt)
	}
	entries, depth := int(le.Uint16(b[2:])), int(le.Uint16(b[6:]))
	if depth >= depthLimit || 12+12*entries > len(b) {
		return fmt.Errorf("extent node depth %d with %d entries: %w", depth, entries, ErrCorrupt)
	}
	for i := 0; i < entries; i++ {
		ent := b[12+12*i:]
		lblk := int64(le.Uint32(ent))
		if depth == 0 {
			n := int64(le.Uint16(ent[4:]))
			unwritten := n > extUninitLen
			if unwritten {
				n -= extUninitLen
			}
			p := int64(le.Uint16(ent[6:]))<<32 | int64(le.Uint32(ent[8:]))
			if n > 0 {
				*out = append(*out, extExtent{lblk: lblk, pblk: p, len: n, unwritten: unwritten})
			}
			continue
		}
		p := int64(le.Uint16(ent[8:]))<<32 | int64(le.Uint32(ent[4:]))
		if p <= 0 || p >= e.blocks || seen[p] {
			return fmt.Errorf("extent tree block %d: %w", p, ErrCorrupt)
		}
		seen[p] = true
		child := make([]byte, e.bs)
		if err := e.readFull(child, p*e.bs); err != nil {
			return fmt.Errorf("read extent tree block %d: %w", p, err)
		}
		if err := e.walkExtents(child, depth, seen, out); err != nil {
			return err
		}
	}
	return nil
}

// data returns a reader over the content of inode.
func (e *extFS) data(inode *ext4.Inode) (io.ReaderAt, error) {
	size := inode.GetSize()
	if inode.Flags&extInlineDataFl != 0 {
		if size > int64(len(inode.BlockOrExtents)) {
			return nil, fmt.Errorf("inline data of %d bytes beyond i_block: %w", size, ErrUnsupported)
		}
		return bytes.NewReader(inode.BlockOrExtents[:size]), nil
	}
	exts, err := e.mapping(inode)
	if err != nil {
		return nil, err
	}
	return &extReader{e: e, exts: exts}, nil
}

// extReader reads a file through its block map; unmapped and unwritten
// blocks read as zeros.
type extReader struct {
	e    *extFS
	exts []extExtent
}

func (x *extReader) ReadAt(p []byte, off int64) (int, error) {
	bs := x.e.bs
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		lblk := pos / bs
		// The first extent ending after lblk.
		i, _ := slices.BinarySearchFunc(x.exts, lblk, func(ex extExtent, b int64) int {
			if ex.lblk+ex.len <= b {
				return -1
			}
			return 1
		})
		var n int64
		switch {
		case i == len(x.exts):
			n = int64(len(p) - done)
			clear(p[done:])
		case x.exts[i].lblk > lblk:
			n = min(int64(len(p)-done), x.exts[i].lblk*bs-pos)
			clear(p[done : done+int(n)])
		default:
			ex := x.exts[i]
			n = min(int64(len(p)-done), (ex.lblk+ex.len)*bs-pos)
			if ex.unwritten {
				clear(p[done : done+int(n)])
			} else if err := x.e.readFull(p[done:done+int(n)], (ex.pblk-ex.lblk)*bs+pos); err != nil {
				return done, err
			}
		}
		done += int(n)
	}
	return done, nil
}

func (e *extFS) list(dir *node, p string) ([]*node, error) {
	inode := dir.id.(extNode).inode
	if inode.Flags&extInlineDataFl != 0 {
		return nil, fmt.Errorf("inline-data directory: %w", ErrUnsupported)
	}
	size := inode.GetSize()
	if size > extMaxDirBytes {
		return nil, fmt.Errorf("directory of %d bytes: %w", size, ErrCorrupt)
	}
	exts, err := e.mapping(inode)
	if err != nil {
		return nil, err
	}
	var out []*node
	block := make([]byte, e.bs)
	for _, x := range exts {
		if x.unwritten {
			continue
		}
		for k := int64(0); k < x.len && (x.lblk+k)*e.bs < size; k++ {
			if err := e.readFull(block, (x.pblk+k)*e.bs); err != nil {
				return nil, fmt.Errorf("read directory block %d: %w", x.pblk+k, err)
			}
			if err := e.scanDirBlock(block, &out); err != nil {
				return nil, fmt.Errorf("directory block %d: %w", x.lblk+k, err)
			}
		}
	}
	return out, nil
}

// scanDirBlock appends the entries of one linear directory block. Hash
// tree (htree) index blocks look like a single empty entry and are
// skipped, as the on-disk format intends.
func (e *extFS) scanDirBlock(b []byte, out *[]*node) error {
	le := binary.LittleEndian
	for off := 0; off+8 <= len(b); {
		ino := le.Uint32(b[off:])
		recLen := int(le.Uint16(b[off+4:]))
		nameLen := int(b[off+6])
		if recLen < 8 || off+recLen > len(b) || (ino != 0 && 8+nameLen > recLen) {
			return fmt.Errorf("bad entry at offset %d: %w", off, ErrCorrupt)
		}
		if ino != 0 && nameLen > 0 {
			name := string(b[off+8 : off+8+nameLen])
			if name != "." && name != ".." {
				inode, err := e.readInode(ino)
				if err != nil {
					return fmt.Errorf("entry %q: %w", name, err)
				}
				*out = append(*out, e.node(name, ino, inode))
			}
		}
		off += recLen
	}
	return nil
}

func (e *extFS) content(n *node, p string) (io.ReaderAt, error) {
	return e.data(n.id.(extNode).inode)
}

func (e *extFS) readlink(n *node, p string) (string, error) {
	inode := n.id.(extNode).inode
	size := inode.GetSize()
	if size <= 0 || size > e.bs {
		return "", fmt.Errorf("symbolic link of %d bytes: %w", size, ErrCorrupt)
	}
	// A fast symlink keeps its target in i_block and owns no data block
	// (apart from an extended-attribute block).
	dataSectors := int64(inode.BlocksLo)
	if inode.FileACLLo != 0 || inode.FileACLHigh != 0 {
		dataSectors -= e.bs / 512
	}
	if inode.Flags&(ext4.EXTENTS_FL|extInlineDataFl) == 0 && size < int64(len(inode.BlockOrExtents)) && dataSectors <= 0 {
		return string(inode.BlockOrExtents[:size]), nil
	}
	r, err := e.data(inode)
	if err != nil {
		return "", err
	}
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(buf), nil
}
