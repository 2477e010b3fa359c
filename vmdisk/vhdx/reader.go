package vhdx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/blockmap"
	"github.com/bunkerbackup/bunker/vmdisk/internal/chain"
	"github.com/bunkerbackup/bunker/vmdisk/internal/lockcheck"
)

// Image is an opened VHDX. It implements [vmdisk.Image]; ReadAt is safe for
// concurrent use.
type Image struct {
	f    io.ReaderAt
	c    io.Closer
	v    *fileView
	path string
	hdr  header
	p    params
	info vmdisk.Info

	size       int64
	blockSize  int64
	chunkRatio int64
	bat        []uint64
	batOff     int64
	metaOff    int64
	parent     vmdisk.Image

	// m serves guest reads once the image is open.
	m blockmap.Map
}

var _ vmdisk.Image = (*Image)(nil)

// InUseReason is the Info.Reasons entry of an image whose log was replayed.
const InUseReason = "dirty log (replayed in memory)"

// Open opens the VHDX at path. An image with a dirty log opens only with
// opts.Force (the error otherwise wraps [vmdisk.ErrInUse]); the log is then
// replayed in memory. A differencing image opens its parent through
// [vmdisk.Open] with opts.Depth+1.
func Open(path string, opts vmdisk.OpenOptions) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open vhdx: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open vhdx: %w", err)
	}
	img, err := open(f, st.Size(), path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	img.c = f
	// A hypervisor (QEMU) holding the file open for writing.
	if err := lockcheck.Mark(f, path, opts.Force, &img.info); err != nil {
		img.Close()
		return nil, err
	}
	return img, nil
}

func (img *Image) errf(structure string, off int64, format string, args ...any) error {
	return &vmdisk.FormatError{Format: "vhdx", Path: img.path, Struct: structure, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (img *Image) wrap(structure string, off int64, msg string, err error) error {
	return &vmdisk.FormatError{Format: "vhdx", Path: img.path, Struct: structure, Offset: off, Msg: msg, Err: err}
}

// read reads exactly len(p) bytes of the (replayed) file at off.
func (img *Image) read(p []byte, off int64, structure string) error {
	if off < 0 || off > img.v.size || int64(len(p)) > img.v.size-off {
		return img.errf(structure, off, "%d bytes at offset %d extend beyond the end of the file (%d bytes)", len(p), off, img.v.size)
	}
	if _, err := img.v.ReadAt(p, off); err != nil && err != io.EOF {
		return img.wrap(structure, off, "read failed", err)
	}
	return nil
}

func open(f io.ReaderAt, fileSize int64, path string, opts vmdisk.OpenOptions) (*Image, error) {
	img := &Image{f: f, path: path, v: &fileView{r: f, phys: fileSize, size: fileSize}}
	if fileSize < miB {
		return nil, img.errf("file identifier", 0, "file is %d bytes, shorter than the 1 MiB header section", fileSize)
	}
	id := make([]byte, 8)
	if err := img.read(id, 0, "file identifier"); err != nil {
		return nil, err
	}
	if string(id) != "vhdxfile" {
		return nil, img.errf("file identifier", 0, "signature %q is not \"vhdxfile\"", id)
	}
	if err := img.readHeaders(); err != nil {
		return nil, err
	}
	if !img.hdr.LogGUID.isZero() {
		if err := img.replay(); err != nil {
			return nil, err
		}
		if !opts.Force {
			return nil, fmt.Errorf("open %s: the VHDX has a dirty log: it is open in a hypervisor or was not closed cleanly (use force to read it with the log replayed in memory): %w", path, vmdisk.ErrInUse)
		}
	}
	if err := img.readRegions(); err != nil {
		return nil, err
	}
	img.info.Format = "vhdx"
	img.info.Files = []string{path}
	switch {
	case img.p.HasParent:
		img.info.Variant = "differencing"
	case img.p.LeaveAllocated:
		img.info.Variant = "fixed"
	default:
		img.info.Variant = "dynamic"
	}
	if !img.hdr.LogGUID.isZero() {
		img.info.InUse = true
		img.info.Reasons = append(img.info.Reasons, InUseReason)
	}
	if img.p.HasParent {
		if err := img.openParent(opts); err != nil {
			return nil, err
		}
	}
	ss := int64(img.p.LogicalSectorSize)
	img.m = blockmap.Map{Path: path, Size: img.size, BlockSize: img.blockSize, File: img.v, Parent: img.parent,
		Lookup: img.lookup, BitmapOffset: img.bitmapOffset, BitmapBytes: img.blockSize / ss / 8, SectorSize: ss}
	return img, nil
}

// readHeaders picks the current header: the valid one with the larger
// sequence number.
func (img *Image) readHeaders() error {
	var hs [2]header
	var errs [2]error
	for i, off := range []int64{header1Offset, header2Offset} {
		b := make([]byte, headerSize)
		if err := img.read(b, off, "header"); err != nil {
			return err
		}
		hs[i], errs[i] = parseHeader(b)
	}
	switch {
	case errs[0] != nil && errs[1] != nil:
		return img.wrap("header", header1Offset, "both headers are invalid", errors.Join(errs[0], errs[1]))
	case errs[1] != nil || (errs[0] == nil && hs[0].Sequence >= hs[1].Sequence):
		img.hdr = hs[0]
	default:
		img.hdr = hs[1]
	}
	if img.hdr.LogVersion != 0 {
		return img.wrap("header", header1Offset, fmt.Sprintf("log version %d", img.hdr.LogVersion), vmdisk.ErrUnsupported)
	}
	return nil
}

// replay reads the log and lays the active sequence over the file.
func (img *Image) replay() error {
	h := img.hdr
	off := int64(min(h.LogOffset, 1<<62))
	if h.LogOffset%miB != 0 || h.LogOffset < miB || h.LogLength%miB != 0 || h.LogLength == 0 {
		return img.errf("log", off, "dirty log at %d, %d bytes, is not 1 MiB aligned after the header section; refusing to read", h.LogOffset, h.LogLength)
	}
	if h.LogLength > maxLogLength {
		return img.errf("log", off, "dirty log of %d bytes is larger than the %d bytes bunker replays; refusing to read", h.LogLength, maxLogLength)
	}
	log := make([]byte, h.LogLength)
	if err := img.read(log, off, "log"); err != nil {
		return err
	}
	ov, err := replayLog(log, h.LogGUID, img.v.phys)
	if err != nil {
		return img.wrap("log", off, "dirty log cannot be replayed; refusing to read (open the image in Hyper-V or run `qemu-img check -r all` on a copy)", err)
	}
	img.v.ov = ov
	img.v.size = max(img.v.phys, ov.minSize)
	return nil
}

// readRegions reads the region table, the metadata and the BAT.
func (img *Image) readRegions() error {
	var regions []regionEntry
	var errs []error
	for _, off := range []int64{region1Offset, region2Offset} {
		b := make([]byte, regionSize)
		if err := img.read(b, off, "region table"); err != nil {
			return err
		}
		r, err := parseRegionTable(b)
		if err == nil {
			regions = r
			break
		}
		errs = append(errs, err)
	}
	if regions == nil {
		return img.wrap("region table", region1Offset, "both region tables are invalid", errors.Join(errs...))
	}
	var bat, meta *regionEntry
	for i, r := range regions {
		switch r.GUID {
		case regionBAT:
			bat = &regions[i]
		case regionMetadata:
			meta = &regions[i]
		default:
			if r.Required {
				return img.wrap("region table", region1Offset, fmt.Sprintf("unknown required region %s", r.GUID), vmdisk.ErrUnsupported)
			}
		}
	}
	if bat == nil || meta == nil {
		return img.errf("region table", region1Offset, "BAT or metadata region missing")
	}
	// The BAT and metadata are allocated when the file is created, so
	// they must lie in the file on disk, not only in the size a log
	// entry promises (that also bounds the memory a damaged file costs).
	for _, r := range []*regionEntry{bat, meta} {
		if r.Offset+uint64(r.Length) > uint64(img.v.phys) {
			return img.errf("region table", region1Offset, "region %s at %d, %d bytes, extends beyond the end of the file (%d bytes)", r.GUID, r.Offset, r.Length, img.v.phys)
		}
	}
	if err := img.readMetadata(meta); err != nil {
		return err
	}
	return img.readBAT(bat)
}

func (img *Image) readMetadata(r *regionEntry) error {
	off := int64(r.Offset)
	img.metaOff = off
	if r.Length < metaTableSize {
		return img.errf("metadata table", off, "metadata region of %d bytes is too small", r.Length)
	}
	tb := make([]byte, metaTableSize)
	if err := img.read(tb, off, "metadata table"); err != nil {
		return err
	}
	entries, err := parseMetadataTable(tb, r.Length)
	if err != nil {
		return img.wrap("metadata table", off, "invalid", err)
	}
	p, err := parseMetadata(entries, func(e metaEntry) ([]byte, error) {
		b := make([]byte, e.Length)
		return b, img.read(b, off+int64(e.Offset), "metadata item "+e.ID.String())
	})
	if errors.Is(err, errUnknownRequired) || errors.Is(err, errUnknownLocator) {
		return img.wrap("metadata", off, err.Error(), vmdisk.ErrUnsupported)
	}
	if err != nil {
		var fe *vmdisk.FormatError
		if errors.As(err, &fe) {
			return err
		}
		return img.wrap("metadata", off, "invalid", err)
	}
	img.p = p
	img.size = int64(p.VirtualSize)
	img.blockSize = int64(p.BlockSize)
	img.chunkRatio = chunkSectors * int64(p.LogicalSectorSize) / img.blockSize
	return nil
}

func (img *Image) payloadBlocks() int64 { return (img.size + img.blockSize - 1) / img.blockSize }

// payloadIndex is the BAT index of payload block b.
func (img *Image) payloadIndex(b int64) int64 { return b + b/img.chunkRatio }

// bitmapIndex is the BAT index of the sector bitmap of chunk c.
func (img *Image) bitmapIndex(c int64) int64 { return c*(img.chunkRatio+1) + img.chunkRatio }

func (img *Image) readBAT(r *regionEntry) error {
	nb := img.payloadBlocks()
	var total int64
	if img.p.HasParent {
		chunks := (nb + img.chunkRatio - 1) / img.chunkRatio
		total = chunks * (img.chunkRatio + 1)
	} else {
		total = nb + (nb-1)/img.chunkRatio
	}
	img.batOff = int64(r.Offset)
	if total*8 > int64(r.Length) {
		return img.errf("BAT", img.batOff, "BAT region of %d bytes cannot hold %d entries", r.Length, total)
	}
	raw := make([]byte, total*8)
	if err := img.read(raw, img.batOff, "BAT"); err != nil {
		return err
	}
	img.bat = make([]uint64, total)
	for i := range img.bat {
		img.bat[i] = le.Uint64(raw[8*i:])
	}
	// Validate every payload entry and every sector bitmap entry in use.
	for b := range nb {
		i := img.payloadIndex(b)
		e := img.bat[i]
		entryOff := img.batOff + 8*i
		switch state(e) {
		case payloadNotPresent, payloadUndefined, payloadZero, payloadUnmapped, payloadUnmappedV095:
		case payloadFullyPresent, payloadPartiallyPresent:
			if state(e) == payloadPartiallyPresent {
				if !img.p.HasParent {
					return img.errf("BAT", entryOff, "block %d is PARTIALLY_PRESENT in a disk without a parent", b)
				}
				c := b / img.chunkRatio
				be := img.bat[img.bitmapIndex(c)]
				if state(be) != bitmapPresent {
					return img.errf("BAT", img.batOff+8*img.bitmapIndex(c), "block %d is PARTIALLY_PRESENT but the sector bitmap of chunk %d is in state %d", b, c, state(be))
				}
				if err := img.checkBlock(be, miB, img.batOff+8*img.bitmapIndex(c), "sector bitmap", c); err != nil {
					return err
				}
			}
			n := min(img.blockSize, img.size-b*img.blockSize)
			if err := img.checkBlock(e, n, entryOff, "block", b); err != nil {
				return err
			}
		default:
			return img.errf("BAT", entryOff, "block %d has invalid state %d", b, state(e))
		}
	}
	return nil
}

func state(e uint64) int { return int(e & 7) }

func fileOffset(e uint64) int64 { return int64(e>>20) * miB }

// checkBlock verifies that n bytes at the entry's offset lie after the
// header section and inside the file.
func (img *Image) checkBlock(e uint64, n, entryOff int64, what string, idx int64) error {
	off := fileOffset(e)
	if off < miB || off > img.v.size || n > img.v.size-off {
		return img.errf("BAT", entryOff, "%s %d at offset %d (%d bytes) lies outside the file (%d bytes)", what, idx, off, n, img.v.size)
	}
	return nil
}

// parentCandidates lists the paths to try for the parent, in the order the
// specification gives: relative_path, volume_path, absolute_win32_path; then
// the file names of those next to the child.
func (img *Image) parentCandidates() []string {
	dir := filepath.Dir(img.path)
	var out, names []string
	for _, k := range []string{"relative_path", "volume_path", "absolute_win32_path"} {
		v, ok := img.p.Locator[k]
		if !ok || v == "" {
			continue
		}
		p := strings.TrimPrefix(v, `\\?\`)
		if filepath.Separator == '/' {
			p = strings.ReplaceAll(p, `\`, "/")
		}
		names = append(names, p)
		switch {
		case k == "relative_path":
			out = append(out, filepath.Join(dir, p))
		case filepath.Separator == '/' && (strings.HasPrefix(p, "Volume{") || (len(p) >= 2 && p[1] == ':')):
			// A Windows volume or drive: only the file name can help.
		case filepath.IsAbs(p):
			out = append(out, p)
		}
	}
	for _, n := range names {
		if b := filepath.Base(n); b != "." && b != "/" && b != "" {
			out = append(out, filepath.Join(dir, b))
		}
	}
	return out
}

func (img *Image) openParent(opts vmdisk.OpenOptions) error {
	metaOff := img.metaOff
	linkage, ok := img.p.Locator["parent_linkage"]
	if !ok {
		return img.errf("parent locator", metaOff, "parent_linkage is missing")
	}
	want := []string{linkage}
	if l2, ok := img.p.Locator["parent_linkage2"]; ok {
		want = append(want, l2)
	}
	var tried []string
	seen := make(map[string]bool)
	for _, p := range img.parentCandidates() {
		if seen[p] {
			continue
		}
		seen[p] = true
		tried = append(tried, p)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		parent, err := vmdisk.Open(p, "", vmdisk.OpenOptions{Force: opts.Force, Depth: opts.Depth + 1})
		if err != nil {
			return img.wrap("parent", metaOff, "open parent "+p, err)
		}
		pv, ok := parent.(*Image)
		if !ok {
			parent.Close()
			return img.errf("parent", metaOff, "parent %s is a %s image, not a VHDX", p, parent.Info().Format)
		}
		match := false
		for _, w := range want {
			if g, err := parseGUID(w); err == nil && g == pv.hdr.DataWriteGUID {
				match = true
			}
		}
		if !match {
			parent.Close()
			return img.errf("parent locator", metaOff, "parent %s has DataWriteGuid {%s}, the child expects parent_linkage %s (the chain was modified)", p, pv.hdr.DataWriteGUID, linkage)
		}
		if pv.p.LogicalSectorSize != img.p.LogicalSectorSize {
			parent.Close()
			return img.errf("parent", metaOff, "parent %s has %d-byte sectors, the child %d", p, pv.p.LogicalSectorSize, img.p.LogicalSectorSize)
		}
		img.parent = parent
		chain.Inherit(&img.info, parent.Info())
		return nil
	}
	if len(tried) == 0 {
		return img.errf("parent locator", metaOff, "differencing disk names no parent path")
	}
	return img.errf("parent locator", metaOff, "parent not found (tried %s)", strings.Join(tried, ", "))
}

// Size returns the virtual disk size in bytes.
func (img *Image) Size() int64 { return img.size }

// SectorSize returns the logical sector size, 512 or 4096.
func (img *Image) SectorSize() int { return int(img.p.LogicalSectorSize) }

// Info describes the image.
func (img *Image) Info() vmdisk.Info {
	i := img.info
	i.Files = append([]string(nil), i.Files...)
	i.Reasons = append([]string(nil), i.Reasons...)
	return i
}

// DataWriteGUID returns the current header's DataWriteGuid, which
// differencing children record as parent_linkage.
func (img *Image) DataWriteGUID() string { return "{" + img.hdr.DataWriteGUID.String() + "}" }

// LogEntriesReplayed returns how many log entries were replayed in memory
// when the image was opened (0 for a clean image).
func (img *Image) LogEntriesReplayed() int {
	if img.v.ov == nil {
		return 0
	}
	return img.v.ov.entries
}

// Close closes the image and its parent.
func (img *Image) Close() error {
	var errs []error
	if img.parent != nil {
		errs = append(errs, img.parent.Close())
	}
	if img.c != nil {
		errs = append(errs, img.c.Close())
	}
	return errors.Join(errs...)
}

// ReadAt reads guest bytes at off.
func (img *Image) ReadAt(p []byte, off int64) (int, error) { return img.m.ReadAt(p, off) }

// lookup locates payload block b. ZERO, UNMAPPED and UNDEFINED blocks read
// as zeros.
func (img *Image) lookup(b int64) blockmap.Block {
	e := img.bat[img.payloadIndex(b)]
	switch state(e) {
	case payloadFullyPresent:
		return blockmap.Block{State: blockmap.Present, Off: fileOffset(e)}
	case payloadPartiallyPresent:
		return blockmap.Block{State: blockmap.Partial, Off: fileOffset(e)}
	case payloadNotPresent:
		return blockmap.Block{State: blockmap.Absent}
	default:
		return blockmap.Block{State: blockmap.Zero}
	}
}

// bitmapOffset is the file offset of the part of the sector bitmap that
// covers payload block b: each chunk's bitmap holds one block after another.
func (img *Image) bitmapOffset(b int64) int64 {
	be := img.bat[img.bitmapIndex(b/img.chunkRatio)]
	return fileOffset(be) + (b%img.chunkRatio)*img.m.BitmapBytes
}

// Extents returns the allocated ranges: FULLY_PRESENT blocks, the present
// sectors of PARTIALLY_PRESENT blocks, and in a differencing disk the
// parent's extents where the parent shows through.
func (img *Image) Extents() ([]vmdisk.Extent, error) { return img.m.Extents() }
