// Package vhd reads and writes Microsoft Virtual Hard Disk (VHD) images.
//
// A VHD is the guest disk followed by a 512-byte footer (Virtual PC before
// 2004 wrote 511 bytes). A fixed VHD is nothing more: raw guest bytes, then
// the footer. A dynamic VHD starts with a copy of the footer and a
// "cxsparse" dynamic header that locates the block allocation table (BAT);
// each allocated block is a sector bitmap followed by the block's data, and
// unallocated blocks read as zeros. A differencing VHD is a dynamic VHD whose
// unallocated blocks, and the sectors whose bitmap bit is clear, come from a
// parent image found through the parent locators of the dynamic header.
//
// All fields are big-endian; the footer and the dynamic header carry a
// one's complement byte-sum checksum, which the reader verifies.
//
// # Virtual size
//
// The footer holds both a CHS geometry and a "current size", and products
// disagree on which one defines the disk. The reader follows qemu (block/vpc.c)
// so that the bytes it reads equal `qemu-img convert -f vpc -O raw` of the same
// image: images whose creator application is "win " (Hyper-V), "qem2" (qemu
// with force_size), "d2v " (Disk2vhd), "CTXS" (XenConverter) or "tap\0"
// (XenServer) are sized by the current size; all others ("vpc ", "qemu",
// unknown) by cylinders × heads × sectors × 512, except that the maximal
// geometry 65535/16/255 always means "use the current size".
//
// The writer always records creator "win " and the exact size, so every
// reader, qemu included, sees the exact size that was written.
//
// # Parents
//
// A differencing disk's parent is searched through the parent locators in
// this order: relative ones (W2ru, Wi2r), absolute ones (W2ku, Wi2k, MacX
// file URLs), then the file names of all of them and of the parent unicode
// name in the child's directory (Windows drive letters mean nothing on
// other systems). Mac alias records are skipped. The parent must be a VHD
// whose footer unique id equals the child's parent unique id; the parent
// timestamp is not compared, because tools touch it without changing data.
package vhd

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/vmdisk"
)

const (
	footerSize    = 512
	dynHeaderSize = 1024
	sectorSize    = 512

	diskFixed        = 2
	diskDynamic      = 3
	diskDifferencing = 4

	batUnused = 0xFFFFFFFF

	// maxGeometrySectors is the largest CHS geometry, 65535×16×255.
	maxGeometrySectors = 65535 * 16 * 255
	// maxSectors is the largest disk qemu and Hyper-V accept: 2040 GiB.
	maxSectors = 0xff000000
	// MaxSize is the largest virtual size a VHD can describe.
	MaxSize = maxSectors * sectorSize
)

var (
	footerCookie = [8]byte{'c', 'o', 'n', 'e', 'c', 't', 'i', 'x'}
	headerCookie = [8]byte{'c', 'x', 's', 'p', 'a', 'r', 's', 'e'}
	// vhdEpoch is the origin of VHD timestamps.
	vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func init() {
	vmdisk.Register(vmdisk.Format{
		Name:  "vhd",
		Probe: Probe,
		Open: func(path string, opts vmdisk.OpenOptions) (vmdisk.Image, error) {
			img, err := Open(path, opts)
			if err != nil {
				return nil, err
			}
			return img, nil
		},
		Create: func(path string, size int64, variant string) (vmdisk.Writer, error) {
			w, err := Create(path, size, variant)
			if err != nil {
				return nil, err
			}
			return w, nil
		},
		Priority: Priority,
	})
}

// Priority is the probe order of the vhd format: after the formats with a
// magic number at offset 0 that could not be mistaken for anything else, and
// before raw, which would otherwise claim every fixed VHD.
const Priority = 50

// Probe reports whether a file looks like a VHD: a "conectix" footer copy at
// offset 0 (dynamic and differencing images) or a footer in the last 512 (or,
// for old Virtual PC images, 511) bytes.
func Probe(head, tail []byte, size int64) bool {
	if len(head) >= footerSize && [8]byte(head[:8]) == footerCookie {
		t := binary.BigEndian.Uint32(head[60:64])
		if t == diskDynamic || t == diskDifferencing {
			return true
		}
	}
	if len(tail) >= footerSize && [8]byte(tail[len(tail)-footerSize:][:8]) == footerCookie {
		return true
	}
	if len(tail) >= footerSize-1 && [8]byte(tail[len(tail)-(footerSize-1):][:8]) == footerCookie {
		return true
	}
	return false
}

// footer is the hard disk footer.
type footer struct {
	Features       uint32
	Version        uint32
	DataOffset     uint64
	Timestamp      uint32
	Creator        [4]byte
	CreatorVersion uint32
	CreatorOS      [4]byte
	OriginalSize   uint64
	CurrentSize    uint64
	Cylinders      uint16
	Heads          uint8
	SectorsPerTrk  uint8
	DiskType       uint32
	Checksum       uint32
	UniqueID       [16]byte
	SavedState     uint8
}

// checksum is the one's complement of the byte sum of b, skipping the four
// checksum bytes at skip.
func checksum(b []byte, skip int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= skip && i < skip+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// parseFooter decodes and validates a footer. b holds at least 511 bytes.
func parseFooter(b []byte) (footer, error) {
	var f footer
	if len(b) < footerSize-1 {
		return f, fmt.Errorf("footer is %d bytes, want 512", len(b))
	}
	if [8]byte(b[:8]) != footerCookie {
		return f, fmt.Errorf("cookie %q is not %q", b[:8], footerCookie[:])
	}
	be := binary.BigEndian
	f.Features = be.Uint32(b[8:])
	f.Version = be.Uint32(b[12:])
	f.DataOffset = be.Uint64(b[16:])
	f.Timestamp = be.Uint32(b[24:])
	copy(f.Creator[:], b[28:32])
	f.CreatorVersion = be.Uint32(b[32:])
	copy(f.CreatorOS[:], b[36:40])
	f.OriginalSize = be.Uint64(b[40:])
	f.CurrentSize = be.Uint64(b[48:])
	f.Cylinders = be.Uint16(b[56:])
	f.Heads = b[58]
	f.SectorsPerTrk = b[59]
	f.DiskType = be.Uint32(b[60:])
	f.Checksum = be.Uint32(b[64:])
	copy(f.UniqueID[:], b[68:84])
	f.SavedState = b[84]
	if sum := checksum(b, 64); sum != f.Checksum {
		return f, fmt.Errorf("checksum %#08x, computed %#08x", f.Checksum, sum)
	}
	if f.Version>>16 != 1 {
		return f, fmt.Errorf("file format version %#08x is not 1.x", f.Version)
	}
	switch f.DiskType {
	case diskFixed, diskDynamic, diskDifferencing:
	default:
		return f, fmt.Errorf("disk type %d is not fixed (2), dynamic (3) or differencing (4)", f.DiskType)
	}
	return f, nil
}

// marshal encodes the footer with a fresh checksum.
func (f *footer) marshal() []byte {
	b := make([]byte, footerSize)
	copy(b, footerCookie[:])
	be := binary.BigEndian
	be.PutUint32(b[8:], f.Features)
	be.PutUint32(b[12:], f.Version)
	be.PutUint64(b[16:], f.DataOffset)
	be.PutUint32(b[24:], f.Timestamp)
	copy(b[28:32], f.Creator[:])
	be.PutUint32(b[32:], f.CreatorVersion)
	copy(b[36:40], f.CreatorOS[:])
	be.PutUint64(b[40:], f.OriginalSize)
	be.PutUint64(b[48:], f.CurrentSize)
	be.PutUint16(b[56:], f.Cylinders)
	b[58] = f.Heads
	b[59] = f.SectorsPerTrk
	be.PutUint32(b[60:], f.DiskType)
	copy(b[68:84], f.UniqueID[:])
	b[84] = f.SavedState
	f.Checksum = checksum(b, 64)
	be.PutUint32(b[64:], f.Checksum)
	return b
}

// geometrySectors is the disk size in sectors according to the CHS geometry.
func (f *footer) geometrySectors() int64 {
	return int64(f.Cylinders) * int64(f.Heads) * int64(f.SectorsPerTrk)
}

// usesCurrentSize reports whether qemu sizes this image by its current size
// rather than its CHS geometry (see the package documentation).
func (f *footer) usesCurrentSize() bool {
	switch string(f.Creator[:]) {
	case "win ", "qem2", "d2v ", "CTXS", "tap\x00":
		return true
	}
	return f.geometrySectors() == maxGeometrySectors
}

// virtualSize is the guest-visible size in bytes, by qemu's rule.
func (f *footer) virtualSize() int64 {
	if f.usesCurrentSize() {
		// qemu counts whole sectors.
		return int64(f.CurrentSize/sectorSize) * sectorSize
	}
	return f.geometrySectors() * sectorSize
}

// geometry computes the CHS geometry of a disk of the given size with the
// algorithm of the VHD specification's appendix.
func geometry(size int64) (cylinders uint16, heads, sectorsPerTrack uint8) {
	total := size / sectorSize
	if total > maxGeometrySectors {
		total = maxGeometrySectors
	}
	var spt, hds, cth int64
	if total >= 65535*16*63 {
		spt, hds = 255, 16
		cth = total / spt
	} else {
		spt = 17
		cth = total / spt
		hds = (cth + 1023) / 1024
		if hds < 4 {
			hds = 4
		}
		if cth >= hds*1024 || hds > 16 {
			spt, hds = 31, 16
			cth = total / spt
		}
		if cth >= hds*1024 {
			spt, hds = 63, 16
			cth = total / spt
		}
	}
	return uint16(cth / hds), uint8(hds), uint8(spt)
}

// dynHeader is the dynamic disk header of dynamic and differencing images.
type dynHeader struct {
	TableOffset     uint64
	HeaderVersion   uint32
	MaxTableEntries uint32
	BlockSize       uint32
	Checksum        uint32
	ParentUniqueID  [16]byte
	ParentTimestamp uint32
	ParentName      [512]byte // UTF-16BE
	Locators        [8]parentLocator
}

// parentLocator is one parent locator entry of the dynamic header.
type parentLocator struct {
	Code       [4]byte
	DataSpace  uint32
	DataLength uint32
	DataOffset uint64
}

// parseDynHeader decodes and validates a dynamic header (1024 bytes).
func parseDynHeader(b []byte) (dynHeader, error) {
	var h dynHeader
	if len(b) < dynHeaderSize {
		return h, fmt.Errorf("dynamic header is %d bytes, want %d", len(b), dynHeaderSize)
	}
	if [8]byte(b[:8]) != headerCookie {
		return h, fmt.Errorf("cookie %q is not %q", b[:8], headerCookie[:])
	}
	be := binary.BigEndian
	h.TableOffset = be.Uint64(b[16:])
	h.HeaderVersion = be.Uint32(b[24:])
	h.MaxTableEntries = be.Uint32(b[28:])
	h.BlockSize = be.Uint32(b[32:])
	h.Checksum = be.Uint32(b[36:])
	copy(h.ParentUniqueID[:], b[40:56])
	h.ParentTimestamp = be.Uint32(b[56:])
	copy(h.ParentName[:], b[64:576])
	for i := range h.Locators {
		e := b[576+24*i:]
		l := &h.Locators[i]
		copy(l.Code[:], e[:4])
		l.DataSpace = be.Uint32(e[4:])
		l.DataLength = be.Uint32(e[8:])
		l.DataOffset = be.Uint64(e[16:])
	}
	if sum := checksum(b[:dynHeaderSize], 36); sum != h.Checksum {
		return h, fmt.Errorf("checksum %#08x, computed %#08x", h.Checksum, sum)
	}
	if h.HeaderVersion>>16 != 1 {
		return h, fmt.Errorf("header version %#08x is not 1.x", h.HeaderVersion)
	}
	if h.BlockSize < sectorSize || h.BlockSize > 1<<30 || h.BlockSize&(h.BlockSize-1) != 0 {
		return h, fmt.Errorf("block size %d is not a power of two between 512 bytes and 1 GiB", h.BlockSize)
	}
	return h, nil
}

// marshal encodes the header with a fresh checksum.
func (h *dynHeader) marshal() []byte {
	b := make([]byte, dynHeaderSize)
	be := binary.BigEndian
	copy(b, headerCookie[:])
	be.PutUint64(b[8:], 0xFFFFFFFFFFFFFFFF)
	be.PutUint64(b[16:], h.TableOffset)
	be.PutUint32(b[24:], h.HeaderVersion)
	be.PutUint32(b[28:], h.MaxTableEntries)
	be.PutUint32(b[32:], h.BlockSize)
	copy(b[40:56], h.ParentUniqueID[:])
	be.PutUint32(b[56:], h.ParentTimestamp)
	copy(b[64:576], h.ParentName[:])
	for i, l := range h.Locators {
		e := b[576+24*i:]
		copy(e[:4], l.Code[:])
		be.PutUint32(e[4:], l.DataSpace)
		be.PutUint32(e[8:], l.DataLength)
		be.PutUint64(e[16:], l.DataOffset)
	}
	h.Checksum = checksum(b, 36)
	be.PutUint32(b[36:], h.Checksum)
	return b
}
