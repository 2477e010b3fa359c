package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/blockmap"
	"github.com/bunkerbackup/bunker/vmdisk/internal/chain"
	"github.com/bunkerbackup/bunker/vmdisk/internal/extents"
	"github.com/bunkerbackup/bunker/vmdisk/internal/lockcheck"
)

// Image is an opened VHD. It implements [vmdisk.Image]; ReadAt is safe for
// concurrent use.
type Image struct {
	r    io.ReaderAt
	c    io.Closer
	path string
	// fileSize is the size of the container file.
	fileSize int64
	footer   footer
	size     int64
	info     vmdisk.Info

	// Dynamic and differencing images.
	hdr        dynHeader
	blockSize  int64
	bitmapSize int64
	bat        []uint32
	parent     vmdisk.Image

	// m serves guest reads once the image is open.
	m blockmap.Map
}

var _ vmdisk.Image = (*Image)(nil)

// Open opens the VHD at path. A differencing image opens its parent through
// [vmdisk.Open] with opts.Depth+1.
func Open(path string, opts vmdisk.OpenOptions) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open vhd: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open vhd: %w", err)
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
	return &vmdisk.FormatError{Format: "vhd", Path: img.path, Struct: structure, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// readAt reads exactly len(p) bytes of the container at off, reporting a
// short file as a FormatError naming the structure.
func (img *Image) readAt(p []byte, off int64, structure string) error {
	if off < 0 || off > img.fileSize || int64(len(p)) > img.fileSize-off {
		return img.errf(structure, off, "%d bytes at offset %d extend beyond the end of the file (%d bytes)", len(p), off, img.fileSize)
	}
	n, err := img.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &vmdisk.FormatError{Format: "vhd", Path: img.path, Struct: structure, Offset: off, Msg: "read failed", Err: err}
}

// open reads the footer, dynamic header and BAT of a VHD held by r.
func open(r io.ReaderAt, fileSize int64, path string, opts vmdisk.OpenOptions) (*Image, error) {
	img := &Image{r: r, path: path, fileSize: fileSize}
	if fileSize < footerSize {
		return nil, img.errf("footer", 0, "file is %d bytes, too short for a footer", fileSize)
	}

	// The footer at the end of the file; old Virtual PC wrote 511 bytes.
	tail := make([]byte, footerSize)
	if err := img.readAt(tail, fileSize-footerSize, "footer"); err != nil {
		return nil, err
	}
	tailOff, tailLen := fileSize-footerSize, int64(footerSize)
	if [8]byte(tail[:8]) != footerCookie && [8]byte(tail[1:9]) == footerCookie {
		tailOff, tailLen = fileSize-(footerSize-1), footerSize-1
		tail = append(tail[1:], 0)
	}
	tf, tailErr := parseFooter(tail)

	// Dynamic and differencing images keep a copy of the footer at offset
	// 0; qemu and Hyper-V read that one.
	head := make([]byte, footerSize)
	if err := img.readAt(head, 0, "footer copy"); err != nil {
		return nil, err
	}
	if [8]byte(head[:8]) == footerCookie {
		hf, err := parseFooter(head)
		if err != nil {
			return nil, &vmdisk.FormatError{Format: "vhd", Path: path, Struct: "footer copy", Offset: 0, Msg: "invalid", Err: err}
		}
		if hf.DiskType != diskFixed {
			if tailErr != nil {
				return nil, &vmdisk.FormatError{Format: "vhd", Path: path, Struct: "footer", Offset: tailOff,
					Msg: "footer at the end of the file is missing or corrupt (truncated image?)", Err: tailErr}
			}
			img.footer = hf
			return img, img.openDynamic(tailOff, opts)
		}
	}
	if tailErr != nil {
		return nil, &vmdisk.FormatError{Format: "vhd", Path: path, Struct: "footer", Offset: tailOff, Msg: "invalid", Err: tailErr}
	}
	if tf.DiskType != diskFixed {
		return nil, img.errf("footer copy", 0, "footer says disk type %d but there is no footer copy at offset 0", tf.DiskType)
	}
	img.footer = tf
	return img, img.openFixed(fileSize - tailLen)
}

func (img *Image) openFixed(dataLen int64) error {
	img.size = img.footer.virtualSize()
	if img.size > dataLen && img.footer.CurrentSize <= uint64(dataLen) && !img.footer.usesCurrentSize() {
		// A geometry rounded up beyond the data (not written by qemu,
		// which sizes the data by the geometry): the current size is
		// the only size that fits.
		img.size = int64(img.footer.CurrentSize / sectorSize * sectorSize)
	}
	if img.size > dataLen {
		return img.errf("footer", dataLen, "disk size %d exceeds the %d data bytes before the footer (truncated image?)", img.size, dataLen)
	}
	if img.size > MaxSize {
		return img.errf("footer", dataLen, "disk size %d exceeds the VHD maximum %d", img.size, int64(MaxSize))
	}
	img.info = vmdisk.Info{Format: "vhd", Variant: "fixed", Files: []string{img.path}}
	// The data is one block at the start of the file.
	img.m = blockmap.Map{Path: img.path, Size: img.size, BlockSize: max(img.size, 1), File: img.r,
		Lookup: func(int64) blockmap.Block { return blockmap.Block{State: blockmap.Present} }}
	return nil
}

func (img *Image) openDynamic(dataEnd int64, opts vmdisk.OpenOptions) error {
	f := &img.footer
	img.size = f.virtualSize()
	if img.size > MaxSize {
		return img.errf("footer", 0, "disk size %d exceeds the VHD maximum %d", img.size, int64(MaxSize))
	}
	if f.DataOffset > uint64(img.fileSize) {
		return img.errf("footer", 0, "dynamic header offset %d beyond the end of the file (%d bytes)", f.DataOffset, img.fileSize)
	}
	hoff := int64(f.DataOffset)
	hb := make([]byte, dynHeaderSize)
	if err := img.readAt(hb, hoff, "dynamic header"); err != nil {
		return err
	}
	h, err := parseDynHeader(hb)
	if err != nil {
		return &vmdisk.FormatError{Format: "vhd", Path: img.path, Struct: "dynamic header", Offset: hoff, Msg: "invalid", Err: err}
	}
	img.hdr = h
	img.blockSize = int64(h.BlockSize)
	img.bitmapSize = (img.blockSize/sectorSize/8 + sectorSize - 1) / sectorSize * sectorSize
	if uint64(h.MaxTableEntries)*uint64(h.BlockSize) < uint64(img.size) {
		return img.errf("dynamic header", hoff, "BAT of %d entries × %d-byte blocks is smaller than the disk (%d bytes)", h.MaxTableEntries, h.BlockSize, img.size)
	}
	// Only the entries covering the disk matter.
	n := (img.size + img.blockSize - 1) / img.blockSize
	if h.TableOffset > uint64(img.fileSize) || int64(h.TableOffset)+4*n > img.fileSize {
		return img.errf("BAT", int64(min(h.TableOffset, uint64(1<<62))), "BAT of %d entries extends beyond the end of the file (%d bytes)", n, img.fileSize)
	}
	batOff := int64(h.TableOffset)
	raw := make([]byte, 4*n)
	if err := img.readAt(raw, batOff, "BAT"); err != nil {
		return err
	}
	img.bat = make([]uint32, n)
	for i := range img.bat {
		e := binary.BigEndian.Uint32(raw[4*i:])
		img.bat[i] = e
		if e == batUnused {
			continue
		}
		start := int64(e) * sectorSize
		if start < footerSize || start+img.bitmapSize+img.blockSize > dataEnd {
			return img.errf("BAT", batOff+4*int64(i), "block %d at offset %d (%d bytes with its bitmap) lies outside the data area [512, %d)", i, start, img.bitmapSize+img.blockSize, dataEnd)
		}
	}

	img.info = vmdisk.Info{Format: "vhd", Variant: "dynamic", Files: []string{img.path}}
	if f.DiskType == diskDifferencing {
		img.info.Variant = "differencing"
		if err := img.openParent(hoff, opts); err != nil {
			return err
		}
	}
	img.m = blockmap.Map{Path: img.path, Size: img.size, BlockSize: img.blockSize, File: img.r, Parent: img.parent,
		Lookup: img.lookup, BitmapOffset: img.bitmapOffset, BitmapBytes: img.bitmapSize, SectorSize: sectorSize, MSBFirst: true}
	return nil
}

// lookup locates block b of a dynamic or differencing image: the sector
// bitmap comes first, then the data. A dynamic image has no parent, so its
// bitmaps do not matter: an allocated block is present whole.
func (img *Image) lookup(b int64) blockmap.Block {
	e := img.bat[b]
	switch {
	case e == batUnused:
		return blockmap.Block{State: blockmap.Absent}
	case img.info.Variant == "differencing":
		return blockmap.Block{State: blockmap.Partial, Off: int64(e)*sectorSize + img.bitmapSize}
	default:
		return blockmap.Block{State: blockmap.Present, Off: int64(e)*sectorSize + img.bitmapSize}
	}
}

// bitmapOffset is the file offset of the sector bitmap of allocated block b.
func (img *Image) bitmapOffset(b int64) int64 { return int64(img.bat[b]) * sectorSize }

// Platform codes of the parent locators.
var (
	codeW2ru = [4]byte{'W', '2', 'r', 'u'}
	codeW2ku = [4]byte{'W', '2', 'k', 'u'}
	codeWi2r = [4]byte{'W', 'i', '2', 'r'}
	codeWi2k = [4]byte{'W', 'i', '2', 'k'}
	codeMacX = [4]byte{'M', 'a', 'c', 'X'}
	codeMac  = [4]byte{'M', 'a', 'c', ' '}
)

// maxLocatorData bounds the platform data of one parent locator.
const maxLocatorData = 64 << 10

// parentCandidates lists the paths the parent may be found at, in order of
// preference: relative locators, absolute ones, then the parent's name next
// to the child.
func (img *Image) parentCandidates(hoff int64) ([]string, error) {
	dir := filepath.Dir(img.path)
	var rel, abs []string
	for i, l := range img.hdr.Locators {
		if l.Code == [4]byte{} || l.DataLength == 0 {
			continue
		}
		entryOff := hoff + 576 + 24*int64(i)
		if l.DataLength > maxLocatorData {
			return nil, img.errf("parent locator", entryOff, "platform data of %d bytes is too long", l.DataLength)
		}
		if l.DataOffset > uint64(img.fileSize) {
			return nil, img.errf("parent locator", entryOff, "platform data at %d beyond the end of the file", l.DataOffset)
		}
		data := make([]byte, l.DataLength)
		if err := img.readAt(data, int64(l.DataOffset), "parent locator data"); err != nil {
			return nil, err
		}
		var p string
		switch l.Code {
		case codeW2ru, codeW2ku:
			p = decodeUTF16(data, binary.LittleEndian)
		case codeWi2r, codeWi2k:
			p = string(bytes.TrimRight(data, "\x00"))
		case codeMacX:
			s := string(bytes.TrimRight(data, "\x00"))
			u, err := url.Parse(s)
			if err != nil || u.Scheme != "file" {
				continue
			}
			p = u.Path
		case codeMac:
			// A Mac OS alias record: opaque, only meaningful to Mac OS.
			continue
		default:
			continue
		}
		if p == "" {
			continue
		}
		p = windowsPath(p)
		if !filepath.IsAbs(p) {
			rel = append(rel, filepath.Join(dir, p))
		} else {
			abs = append(abs, p)
		}
	}
	out := append(rel, abs...)
	// The parent's file name, and the names of all locators, next to the child.
	names := append([]string(nil), out...)
	if name := decodeUTF16(img.hdr.ParentName[:], binary.BigEndian); name != "" {
		names = append(names, windowsPath(name))
	}
	for _, n := range names {
		if b := filepath.Base(n); b != "." && b != "/" && b != "" {
			out = append(out, filepath.Join(dir, b))
		}
	}
	return out, nil
}

// windowsPath converts a Windows path to one this system can try: the
// separators become slashes, and "\\?\" and ".\" prefixes go.
func windowsPath(p string) string {
	p = strings.TrimPrefix(p, `\\?\`)
	if filepath.Separator == '/' {
		p = strings.ReplaceAll(p, `\`, "/")
		if len(p) >= 2 && p[1] == ':' {
			// A drive letter means nothing here; keep the rest as a
			// relative path so at least the file name can be tried.
			p = strings.TrimLeft(p[2:], "/")
		}
	}
	return p
}

// decodeUTF16 decodes a NUL-terminated or NUL-padded UTF-16 string.
func decodeUTF16(b []byte, order binary.ByteOrder) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := order.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func (img *Image) openParent(hoff int64, opts vmdisk.OpenOptions) error {
	cands, err := img.parentCandidates(hoff)
	if err != nil {
		return err
	}
	var tried []string
	seen := make(map[string]bool)
	for _, p := range cands {
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
			return &vmdisk.FormatError{Format: "vhd", Path: img.path, Struct: "parent", Offset: hoff, Msg: "open parent " + p, Err: err}
		}
		pv, ok := parent.(*Image)
		if !ok {
			parent.Close()
			return img.errf("parent", hoff, "parent %s is a %s image, not a VHD", p, parent.Info().Format)
		}
		if pv.footer.UniqueID != img.hdr.ParentUniqueID {
			parent.Close()
			return img.errf("dynamic header", hoff+40, "parent %s has unique id %x, the child expects %x (the chain was modified)", p, pv.footer.UniqueID, img.hdr.ParentUniqueID)
		}
		img.parent = parent
		chain.Inherit(&img.info, parent.Info())
		return nil
	}
	if len(tried) == 0 {
		return img.errf("parent locator", hoff+576, "differencing disk names no parent")
	}
	return img.errf("parent locator", hoff+576, "parent not found (tried %s)", strings.Join(tried, ", "))
}

// Size returns the virtual disk size in bytes.
func (img *Image) Size() int64 { return img.size }

// SectorSize returns 512: VHD disks always have 512-byte sectors.
func (img *Image) SectorSize() int { return sectorSize }

// Info describes the image.
func (img *Image) Info() vmdisk.Info {
	i := img.info
	i.Files = append([]string(nil), i.Files...)
	i.Reasons = append([]string(nil), i.Reasons...)
	return i
}

// UniqueID returns the footer's unique id, which differencing children
// record as their parent's.
func (img *Image) UniqueID() [16]byte { return img.footer.UniqueID }

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

// Extents returns the allocated ranges of the disk: for a fixed VHD the data
// ranges of the file (by SEEK_DATA/SEEK_HOLE where the file system supports
// it), for a dynamic VHD the allocated blocks, for a differencing VHD the
// sectors present in this file plus the parent's extents where the parent
// shows through.
func (img *Image) Extents() ([]vmdisk.Extent, error) {
	if img.bat == nil {
		return img.fixedExtents(), nil
	}
	return img.m.Extents()
}

// Linux SEEK_DATA and SEEK_HOLE.
const (
	seekData = 3
	seekHole = 4
)

func (img *Image) fixedExtents() []vmdisk.Extent {
	all := []vmdisk.Extent{{Offset: 0, Length: img.size}}
	if img.size == 0 {
		return nil
	}
	s, ok := img.r.(io.Seeker)
	if !ok {
		return all
	}
	var out []vmdisk.Extent
	off := int64(0)
	for off < img.size {
		d, err := s.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, errNXIO) {
				break // no data after off
			}
			return all
		}
		if d >= img.size {
			break
		}
		h, err := s.Seek(d, seekHole)
		if err != nil || h <= d {
			return all
		}
		out = extents.Append(out, d, min(h, img.size)-d)
		off = h
	}
	return out
}
