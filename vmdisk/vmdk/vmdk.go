// Package vmdk reads and writes VMware VMDK disk images.
//
// A VMDK disk is a text descriptor plus one or more extents, concatenated
// in order to form the guest disk. The descriptor is a separate small file
// (monolithicFlat, twoGbMaxExtentSparse/Flat, ESXi "vmfs") or embedded in a
// sparse extent (monolithicSparse, streamOptimized). Extents are:
//
//   - FLAT/VMFS: the guest bytes at an offset in a file; allocation comes
//     from the file system's hole map.
//   - SPARSE: a hosted sparse extent. A grain directory points to grain
//     tables, whose entries point to grains (64 KiB by default): 0 means
//     unallocated (read the parent disk, else zeros), 1 a zeroed grain, any
//     other value the grain's sector in the file. In stream-optimized
//     extents grains are zlib-compressed behind a 12-byte marker, and the
//     grain directory is either where the header says (qemu) or, with
//     GD_AT_END, where the footer at the end of the file says (VMware).
//   - ZERO: reads as zeros.
//
// A child (delta) disk names its parent in parentFileNameHint; the parent
// is opened with [vmdisk.Open], so it may be any format, and a VMDK
// parent's CID must match the child's parentCID.
//
// Not read, and refused by name with [vmdisk.ErrUnsupported]: SESparse,
// vmfsSparse/COWD (VMDK3), raw device mappings, and unknown create types.
//
// The writers produce monolithicSparse (default) and VMware-style
// streamOptimized images; see [Create].
package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bunkerbackup/bunker/vmdisk"
	imgchain "github.com/bunkerbackup/bunker/vmdisk/internal/chain"
	"github.com/bunkerbackup/bunker/vmdisk/internal/extents"
	"github.com/bunkerbackup/bunker/vmdisk/internal/lockcheck"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

func init() {
	vmdisk.Register(vmdisk.Format{
		Name:     "vmdk",
		Probe:    Probe,
		Open:     func(path string, opts vmdisk.OpenOptions) (vmdisk.Image, error) { return Open(path, opts) },
		Create:   Create,
		Priority: 10,
	})
}

// Create types by how bunker treats them.
var (
	sparseTypes = map[string]bool{"monolithicSparse": true, "twoGbMaxExtentSparse": true, "streamOptimized": true}
	flatTypes   = map[string]bool{"monolithicFlat": true, "twoGbMaxExtentFlat": true, "vmfs": true,
		"vmfsPreallocated": true, "vmfsEagerZeroedThick": true, "vmfsThin": true}
	unsupportedTypes = map[string]string{
		"seSparse": "SESparse", "vmfsSparse": "vmfsSparse (COWD)", "vmfsThinSparse": "vmfsSparse (COWD)",
		"vsanSparse": "vSAN sparse", "vmfsRDM": "raw device mapping", "vmfsRDMP": "raw device mapping",
		"vmfsRaw": "raw device mapping", "vmfsRawDeviceMap": "raw device mapping",
		"vmfsPassthroughRawDeviceMap": "raw device mapping", "fullDevice": "raw device",
		"partitionedDevice": "raw device partitions", "custom": "custom",
	}
)

// Probe reports whether a file looks like a VMDK: a sparse extent header
// (also the refused COWD and SESparse kinds, so they are not read as raw) or a descriptor.
func Probe(head, tail []byte, size int64) bool {
	if len(head) >= 4 {
		if m := binary.LittleEndian.Uint32(head); m == sparseMagic || m == cowdMagic {
			return true
		}
	}
	if len(head) >= 8 && binary.LittleEndian.Uint64(head) == seSparseMagic {
		return true
	}
	return looksLikeDescriptor(head, size)
}

func looksLikeDescriptor(head []byte, size int64) bool {
	text := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	if bytes.HasPrefix(text, []byte("# Disk DescriptorFile")) {
		return true
	}
	// Descriptors without the comment line: small, text, with createType.
	return size <= 64<<10 && len(head) > 0 && bytes.IndexByte(head, 0) < 0 &&
		bytes.Contains(head, []byte("createType")) && bytes.Contains(head, []byte("version"))
}

// Image is an open VMDK disk.
type Image struct {
	path    string
	size    int64
	cid     uint32
	extents []*extent
	parent  vmdisk.Image
	files   []*os.File
	info    vmdisk.Info
}

type extentKind int

const (
	kindFlat extentKind = iota
	kindSparse
	kindZero
)

type extent struct {
	kind    extentKind
	start   int64 // virtual offset
	size    int64
	f       *os.File
	path    string
	fileOff int64 // flat: byte offset in f
	sp      *sparseExtent
}

// Open opens the VMDK at path: a descriptor file or a sparse extent with
// an embedded descriptor.
func Open(path string, opts vmdisk.OpenOptions) (*Image, error) {
	return open(path, opts, nil)
}

func formatErr(path, structure string, off int64, msg string, err error) error {
	return &vmdisk.FormatError{Format: "vmdk", Path: path, Struct: structure, Offset: off, Msg: msg, Err: err}
}

func open(path string, opts vmdisk.OpenOptions, chain []string) (_ *Image, err error) {
	if opts.Depth > vmdisk.MaxChainDepth {
		return nil, fmt.Errorf("open %s: backing chain deeper than %d images", path, vmdisk.MaxChainDepth)
	}
	im := &Image{path: path, info: vmdisk.Info{Format: "vmdk", Files: []string{path}}}
	defer func() {
		if err != nil {
			im.Close()
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	im.files = append(im.files, f)
	fileSize, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	head := make([]byte, min(fileSize, headerSize))
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}

	var desc *descriptor
	var embedded *sparseExtent
	switch {
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == cowdMagic:
		return nil, fmt.Errorf("open %s: VMDK3/vmfsSparse (COWD) extent: %w", path, vmdisk.ErrUnsupported)
	case len(head) >= 8 && binary.LittleEndian.Uint64(head) == seSparseMagic:
		return nil, fmt.Errorf("open %s: SESparse extent (open its descriptor; SESparse is not supported): %w", path, vmdisk.ErrUnsupported)
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == sparseMagic:
		h, msg := parseHeader(head)
		if msg != "" {
			return nil, formatErr(path, "sparse header", 0, msg, nil)
		}
		if h.DescriptorOffset == 0 || h.DescriptorSize == 0 {
			return nil, formatErr(path, "sparse header", 0, "sparse extent without an embedded descriptor: open the disk's descriptor file instead", nil)
		}
		sp, err := newSparseExtent(f, path, fileSize, h)
		if err != nil {
			return nil, err
		}
		text := make([]byte, h.DescriptorSize*sector)
		if _, err := f.ReadAt(text, int64(h.DescriptorOffset)*sector); err != nil {
			return nil, formatErr(path, "descriptor", int64(h.DescriptorOffset)*sector, "cannot read", err)
		}
		if desc, err = parseDescriptor(text); err != nil {
			return nil, formatErr(path, "descriptor", int64(h.DescriptorOffset)*sector, err.Error(), nil)
		}
		embedded = sp
	default:
		if fileSize > maxDescriptorLen {
			return nil, formatErr(path, "descriptor", 0, "neither a sparse extent nor a descriptor", nil)
		}
		text := make([]byte, fileSize)
		if _, err := f.ReadAt(text, 0); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if desc, err = parseDescriptor(text); err != nil {
			return nil, formatErr(path, "descriptor", 0, err.Error(), nil)
		}
	}
	im.cid = desc.CID
	im.info.Variant = desc.CreateType

	if name, ok := unsupportedTypes[desc.CreateType]; ok {
		return nil, fmt.Errorf("open %s: VMDK createType %q (%s): %w", path, desc.CreateType, name, vmdisk.ErrUnsupported)
	}
	if !sparseTypes[desc.CreateType] && !flatTypes[desc.CreateType] {
		return nil, fmt.Errorf("open %s: unknown VMDK createType %q: %w", path, clip(desc.CreateType), vmdisk.ErrUnsupported)
	}

	if embedded != nil {
		// As in qemu, a sparse file with an embedded descriptor is its own
		// single extent, whatever file name the descriptor mentions.
		if desc.CreateType != "monolithicSparse" && desc.CreateType != "streamOptimized" {
			return nil, formatErr(path, "descriptor", int64(embedded.h.DescriptorOffset)*sector,
				fmt.Sprintf("createType %q in an embedded descriptor", desc.CreateType), nil)
		}
		im.extents = []*extent{{kind: kindSparse, size: embedded.size(), f: f, path: path, sp: embedded}}
	} else if err := im.openExtents(desc); err != nil {
		return nil, err
	}
	for _, e := range im.extents {
		im.size += e.size
	}
	if err := im.checkInUse(); err != nil {
		return nil, err
	}
	if im.info.InUse && !opts.Force {
		return nil, fmt.Errorf("open %s: %s: %w", path, strings.Join(im.info.Reasons, "; "), vmdisk.ErrInUse)
	}
	if desc.ParentCID != noParent {
		if err := im.openParent(desc, opts, chain); err != nil {
			return nil, err
		}
	}
	return im, nil
}

// openExtents opens the extent files a separate descriptor lists.
func (im *Image) openExtents(desc *descriptor) error {
	if len(desc.Extents) == 0 {
		return formatErr(im.path, "descriptor", 0, "no extents", nil)
	}
	dir := filepath.Dir(im.path)
	opened := map[string]*os.File{}
	var start int64
	for _, el := range desc.Extents {
		where := fmt.Sprintf("descriptor line %d", el.Line)
		if el.Access == "NOACCESS" {
			return fmt.Errorf("open %s: %s: NOACCESS extent: %w", im.path, where, vmdisk.ErrUnsupported)
		}
		size := el.Sectors * sector
		e := &extent{start: start, size: size}
		switch el.Type {
		case "ZERO":
			e.kind = kindZero
		case "FLAT", "VMFS", "SPARSE":
		case "VMFSSPARSE", "SESPARSE", "VMFSRDM", "VMFSRAW", "VMFSRAWDEVICEMAP", "VMFSPASSTHROUGHRAWDEVICEMAP":
			return fmt.Errorf("open %s: %s: %s extent: %w", im.path, where, el.Type, vmdisk.ErrUnsupported)
		default:
			return fmt.Errorf("open %s: %s: unknown extent type %q: %w", im.path, where, clip(el.Type), vmdisk.ErrUnsupported)
		}
		if e.kind != kindZero {
			p := el.File
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			f := opened[p]
			if f == nil {
				if fi, err := os.Stat(p); err == nil && !fi.Mode().IsRegular() &&
					(fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0) {
					return formatErr(im.path, where, 0, fmt.Sprintf("extent %q is not a regular file or block device", el.File), nil)
				}
				var err error
				if f, err = os.Open(p); err != nil {
					return formatErr(im.path, where, 0, "cannot open extent file", err)
				}
				im.files = append(im.files, f)
				im.info.Files = append(im.info.Files, p)
				opened[p] = f
			}
			e.f, e.path = f, p
			fsize, err := f.Seek(0, io.SeekEnd)
			if err != nil {
				return fmt.Errorf("open %s: %w", p, err)
			}
			if el.Type == "SPARSE" {
				e.kind = kindSparse
				if el.Offset != 0 {
					return formatErr(im.path, where, 0, "offset on a SPARSE extent", nil)
				}
				hb := make([]byte, headerSize)
				if _, err := f.ReadAt(hb, 0); err != nil {
					return formatErr(p, "sparse header", 0, "cannot read", err)
				}
				if binary.LittleEndian.Uint32(hb) == cowdMagic {
					return fmt.Errorf("open %s: VMDK3/vmfsSparse (COWD) extent: %w", p, vmdisk.ErrUnsupported)
				}
				h, msg := parseHeader(hb)
				if msg != "" {
					return formatErr(p, "sparse header", 0, msg, nil)
				}
				if e.sp, err = newSparseExtent(f, p, fsize, h); err != nil {
					return err
				}
				if e.sp.size() < size {
					return formatErr(p, "sparse header", 0, fmt.Sprintf("capacity %d sectors smaller than the %d sectors of %s", h.Capacity, el.Sectors, where), nil)
				}
			} else {
				e.kind = kindFlat
				e.fileOff = el.Offset * sector
				if e.fileOff+size > fsize {
					return formatErr(p, "flat extent", e.fileOff, fmt.Sprintf("%s needs %d bytes, the file has %d", where, e.fileOff+size, fsize), nil)
				}
			}
		}
		im.extents = append(im.extents, e)
		start += size
		if start > maxCapacity*sector {
			return formatErr(im.path, where, 0, "disk too large", nil)
		}
	}
	return nil
}

// checkInUse looks for signs that a hypervisor has the disk open for
// writing: the unclean-shutdown flag, a VMware .lck next to a file, or a
// QEMU/POSIX write lock.
func (im *Image) checkInUse() error {
	add := func(r string) {
		im.info.InUse = true
		im.info.Reasons = append(im.info.Reasons, r)
	}
	for _, e := range im.extents {
		if e.sp != nil && e.sp.h.UncleanShutdown {
			add(e.path + ": uncleanShutdown flag set (open in VMware, or not closed cleanly)")
		}
	}
	for i, p := range im.info.Files {
		if _, err := os.Lstat(p + ".lck"); err == nil {
			add(p + ": VMware lock " + filepath.Base(p) + ".lck present")
		}
		reason, err := lockcheck.Check(im.files[i])
		if err != nil {
			return err
		}
		if reason != "" {
			add(p + ": " + reason)
		}
	}
	return nil
}

// openParent opens and checks the parent of a child disk.
func (im *Image) openParent(desc *descriptor, opts vmdisk.OpenOptions, chain []string) error {
	if desc.ParentHint == "" {
		return formatErr(im.path, "descriptor", 0, fmt.Sprintf("parentCID %08x without a parentFileNameHint", desc.ParentCID), nil)
	}
	p := desc.ParentHint
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(im.path), p)
	}
	self, err := filepath.Abs(im.path)
	if err != nil {
		return err
	}
	chain = append(chain, self)
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	for _, c := range chain {
		if c == abs {
			return formatErr(im.path, "descriptor", 0, fmt.Sprintf("parent chain loop: %s is already in the chain", p), nil)
		}
	}
	popts := vmdisk.OpenOptions{Force: opts.Force, Depth: opts.Depth + 1}
	if popts.Depth > vmdisk.MaxChainDepth {
		return formatErr(im.path, "descriptor", 0, fmt.Sprintf("backing chain deeper than %d images", vmdisk.MaxChainDepth), nil)
	}
	if fi, err := os.Stat(p); err == nil && !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		// Never block on a FIFO or terminal named by a hostile hint.
		return formatErr(im.path, "descriptor", 0, fmt.Sprintf("parent %q is not a regular file or block device", desc.ParentHint), nil)
	} else if err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return formatErr(im.path, "descriptor", 0, fmt.Sprintf("parent %q is a character device", desc.ParentHint), nil)
	}
	var parent vmdisk.Image
	if isVMDK(p) {
		var pi *Image
		pi, err = open(p, popts, chain)
		if pi != nil {
			parent = pi
		}
	} else {
		parent, err = vmdisk.Open(p, "", popts)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return formatErr(im.path, "descriptor", 0, fmt.Sprintf("parent %q not found", desc.ParentHint), err)
		}
		return fmt.Errorf("open parent of %s: %w", im.path, err)
	}
	im.parent = parent
	if pi, ok := parent.(*Image); ok && pi.cid != desc.ParentCID {
		return formatErr(im.path, "descriptor", 0,
			fmt.Sprintf("parentCID %08x does not match the CID %08x of parent %s: the parent changed after this child was made", desc.ParentCID, pi.cid, p), nil)
	}
	imgchain.Inherit(&im.info, parent.Info())
	return nil
}

// isVMDK tells whether path starts like a VMDK (so the chain is followed
// with loop detection); errors are left for the open that follows.
func isVMDK(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	size, _ := f.Seek(0, io.SeekEnd)
	return Probe(head[:n], nil, size)
}

// Size returns the virtual disk size.
func (im *Image) Size() int64 { return im.size }

// SectorSize is always 512 for VMDK.
func (im *Image) SectorSize() int { return sector }

// Info describes the disk; Variant is the createType.
func (im *Image) Info() vmdisk.Info { return im.info }

// Close closes all files, and the parent.
func (im *Image) Close() error {
	var errs []error
	for _, f := range im.files {
		errs = append(errs, f.Close())
	}
	im.files = nil
	if im.parent != nil {
		errs = append(errs, im.parent.Close())
		im.parent = nil
	}
	return errors.Join(errs...)
}

// ReadAt reads guest bytes. Unallocated grains come from the parent or
// read as zeros; it returns io.EOF at or beyond Size.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", im.path, off)
	}
	if off >= im.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(len(p)) > im.size-off {
		p = p[:im.size-off]
	}
	n := len(p)
	i := sort.Search(len(im.extents), func(i int) bool { return im.extents[i].start+im.extents[i].size > off })
	for len(p) > 0 && i < len(im.extents) {
		e := im.extents[i]
		in := off - e.start
		k := min(int64(len(p)), e.size-in)
		if err := im.readExtent(e, p[:k], in); err != nil {
			return 0, err
		}
		p = p[k:]
		off += k
		i++
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

func (im *Image) readExtent(e *extent, p []byte, in int64) error {
	switch e.kind {
	case kindZero:
		clear(p)
		return nil
	case kindFlat:
		if _, err := e.f.ReadAt(p, e.fileOff+in); err != nil {
			if err == io.EOF {
				return formatErr(e.path, "flat extent", e.fileOff+in, "file shorter than the extent", io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("read %s: %w", e.path, err)
		}
		return nil
	}
	return e.sp.readAt(p, in, func(q []byte, off int64) error { return im.readParent(q, e.start+off) })
}

// readParent fills p from the parent at virtual offset off; beyond the
// parent's end (or without a parent) the disk reads as zeros.
func (im *Image) readParent(p []byte, off int64) error {
	if im.parent == nil || off >= im.parent.Size() {
		clear(p)
		return nil
	}
	k := min(int64(len(p)), im.parent.Size()-off)
	if _, err := im.parent.ReadAt(p[:k], off); err != nil && err != io.EOF {
		return err
	}
	clear(p[k:])
	return nil
}

// Extents returns the allocated ranges: allocated grains, data regions of
// flat extent files, and the parent's extents where this disk's grains are
// unallocated.
func (im *Image) Extents() ([]vmdisk.Extent, error) {
	var own, fall []vmdisk.Extent
	for _, e := range im.extents {
		switch e.kind {
		case kindFlat:
			data, err := raw.DataExtents(e.f, e.fileOff, e.fileOff+e.size)
			if err != nil {
				return nil, err
			}
			for _, d := range data {
				own = extents.Append(own, e.start+d.Offset-e.fileOff, d.Length)
			}
		case kindSparse:
			var err error
			if own, fall, err = e.sp.allocation(e.start, e.size, own, fall); err != nil {
				return nil, err
			}
		}
	}
	if im.parent == nil || len(fall) == 0 {
		return own, nil
	}
	pext, err := im.parent.Extents()
	if err != nil {
		return nil, err
	}
	return extents.Union(own, extents.Intersect(fall, pext)), nil
}
