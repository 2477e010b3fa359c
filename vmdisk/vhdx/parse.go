package vhdx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

var le = binary.LittleEndian

// header is a VHDX header (one of two at 64 KiB and 128 KiB).
type header struct {
	Sequence      uint64
	FileWriteGUID guid
	DataWriteGUID guid
	LogGUID       guid
	LogVersion    uint16
	Version       uint16
	LogLength     uint32
	LogOffset     uint64
}

// parseHeader decodes and validates a 4 KiB header.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Errorf("header is %d bytes, want %d", len(b), headerSize)
	}
	b = b[:headerSize]
	if string(b[:4]) != "head" {
		return h, fmt.Errorf("signature %q is not \"head\"", b[:4])
	}
	if sum, want := crc32c(b, 4), le.Uint32(b[4:]); sum != want {
		return h, fmt.Errorf("CRC-32C %#08x, computed %#08x", want, sum)
	}
	h.Sequence = le.Uint64(b[8:])
	copy(h.FileWriteGUID[:], b[16:32])
	copy(h.DataWriteGUID[:], b[32:48])
	copy(h.LogGUID[:], b[48:64])
	h.LogVersion = le.Uint16(b[64:])
	h.Version = le.Uint16(b[66:])
	h.LogLength = le.Uint32(b[68:])
	h.LogOffset = le.Uint64(b[72:])
	if h.Version != 1 {
		return h, fmt.Errorf("version %d is not 1", h.Version)
	}
	return h, nil
}

// regionEntry is one entry of the region table.
type regionEntry struct {
	GUID     guid
	Offset   uint64
	Length   uint32
	Required bool
}

// parseRegionTable decodes and validates a 64 KiB region table.
func parseRegionTable(b []byte) ([]regionEntry, error) {
	if len(b) < regionSize {
		return nil, fmt.Errorf("region table is %d bytes, want %d", len(b), regionSize)
	}
	b = b[:regionSize]
	if string(b[:4]) != "regi" {
		return nil, fmt.Errorf("signature %q is not \"regi\"", b[:4])
	}
	if sum, want := crc32c(b, 4), le.Uint32(b[4:]); sum != want {
		return nil, fmt.Errorf("CRC-32C %#08x, computed %#08x", want, sum)
	}
	n := le.Uint32(b[8:])
	if n > 2047 {
		return nil, fmt.Errorf("%d entries, at most 2047 allowed", n)
	}
	out := make([]regionEntry, n)
	for i := range out {
		e := b[16+32*i:]
		r := &out[i]
		copy(r.GUID[:], e[:16])
		r.Offset = le.Uint64(e[16:])
		r.Length = le.Uint32(e[24:])
		r.Required = le.Uint32(e[28:])&1 != 0
		if r.Offset%miB != 0 || r.Offset < miB || r.Length%miB != 0 || r.Length == 0 {
			return nil, fmt.Errorf("region %s at %d, %d bytes, is not 1 MiB aligned after the header section", r.GUID, r.Offset, r.Length)
		}
		for _, p := range out[:i] {
			if p.GUID == r.GUID {
				return nil, fmt.Errorf("region %s appears twice", r.GUID)
			}
			if r.Offset < p.Offset+uint64(p.Length) && p.Offset < r.Offset+uint64(r.Length) {
				return nil, fmt.Errorf("regions %s and %s overlap", p.GUID, r.GUID)
			}
		}
	}
	return out, nil
}

// metaEntry is one entry of the metadata table.
type metaEntry struct {
	ID            guid
	Offset        uint32
	Length        uint32
	IsUser        bool
	IsVirtualDisk bool
	IsRequired    bool
}

// parseMetadataTable decodes the 64 KiB metadata table at the start of the
// metadata region; regionLen bounds the items.
func parseMetadataTable(b []byte, regionLen uint32) ([]metaEntry, error) {
	if len(b) < metaTableSize {
		return nil, fmt.Errorf("metadata table is %d bytes, want %d", len(b), metaTableSize)
	}
	if string(b[:8]) != "metadata" {
		return nil, fmt.Errorf("signature %q is not \"metadata\"", b[:8])
	}
	n := le.Uint16(b[10:])
	if n > 2047 {
		return nil, fmt.Errorf("%d entries, at most 2047 allowed", n)
	}
	out := make([]metaEntry, n)
	for i := range out {
		e := b[32+32*i:]
		m := &out[i]
		copy(m.ID[:], e[:16])
		m.Offset = le.Uint32(e[16:])
		m.Length = le.Uint32(e[20:])
		flags := le.Uint32(e[24:])
		m.IsUser = flags&1 != 0
		m.IsVirtualDisk = flags&2 != 0
		m.IsRequired = flags&4 != 0
		if m.Length == 0 {
			if m.Offset != 0 {
				return nil, fmt.Errorf("item %s: empty item at non-zero offset %d", m.ID, m.Offset)
			}
			continue
		}
		if m.Offset < metaTableSize || uint64(m.Offset)+uint64(m.Length) > uint64(regionLen) {
			return nil, fmt.Errorf("item %s at %d, %d bytes, lies outside the metadata region (%d bytes)", m.ID, m.Offset, m.Length, regionLen)
		}
		for _, p := range out[:i] {
			if p.ID == m.ID && p.IsUser == m.IsUser {
				return nil, fmt.Errorf("item %s appears twice", m.ID)
			}
		}
	}
	return out, nil
}

// params are the known metadata items.
type params struct {
	BlockSize          uint32
	LeaveAllocated     bool
	HasParent          bool
	VirtualSize        uint64
	DiskID             guid
	LogicalSectorSize  uint32
	PhysicalSectorSize uint32
	Locator            map[string]string // nil without a parent locator
}

// errUnknownRequired marks a required item or region bunker does not know.
var errUnknownRequired = errors.New("unknown required")

// parseMetadata reads the known items through item (which returns the bytes
// of an entry) and validates them.
func parseMetadata(entries []metaEntry, item func(metaEntry) ([]byte, error)) (params, error) {
	var p params
	seen := make(map[guid]bool)
	for _, e := range entries {
		if e.IsUser {
			continue
		}
		known := true
		var b []byte
		switch e.ID {
		case itemFileParameters, itemVirtualDiskSize, itemVirtualDiskID, itemLogicalSectorSize, itemPhysicalSectorSize, itemParentLocator:
			var err error
			if b, err = item(e); err != nil {
				return p, err
			}
		default:
			known = false
		}
		if !known {
			if e.IsRequired {
				return p, fmt.Errorf("%w metadata item %s", errUnknownRequired, e.ID)
			}
			continue
		}
		need := map[guid]int{itemFileParameters: 8, itemVirtualDiskSize: 8, itemVirtualDiskID: 16, itemLogicalSectorSize: 4, itemPhysicalSectorSize: 4, itemParentLocator: 20}[e.ID]
		if len(b) < need {
			return p, fmt.Errorf("item %s is %d bytes, want %d", e.ID, len(b), need)
		}
		seen[e.ID] = true
		switch e.ID {
		case itemFileParameters:
			p.BlockSize = le.Uint32(b)
			flags := le.Uint32(b[4:])
			p.LeaveAllocated = flags&1 != 0
			p.HasParent = flags&2 != 0
		case itemVirtualDiskSize:
			p.VirtualSize = le.Uint64(b)
		case itemVirtualDiskID:
			copy(p.DiskID[:], b)
		case itemLogicalSectorSize:
			p.LogicalSectorSize = le.Uint32(b)
		case itemPhysicalSectorSize:
			p.PhysicalSectorSize = le.Uint32(b)
		case itemParentLocator:
			loc, err := parseParentLocator(b)
			if err != nil {
				return p, err
			}
			p.Locator = loc
		}
	}
	for _, id := range []guid{itemFileParameters, itemVirtualDiskSize, itemLogicalSectorSize} {
		if !seen[id] {
			return p, fmt.Errorf("required metadata item %s is missing", id)
		}
	}
	if p.BlockSize < miB || p.BlockSize > 256*miB || p.BlockSize&(p.BlockSize-1) != 0 {
		return p, fmt.Errorf("block size %d is not a power of two between 1 MiB and 256 MiB", p.BlockSize)
	}
	if p.LogicalSectorSize != 512 && p.LogicalSectorSize != 4096 {
		return p, fmt.Errorf("logical sector size %d is neither 512 nor 4096", p.LogicalSectorSize)
	}
	if seen[itemPhysicalSectorSize] && p.PhysicalSectorSize != 512 && p.PhysicalSectorSize != 4096 {
		return p, fmt.Errorf("physical sector size %d is neither 512 nor 4096", p.PhysicalSectorSize)
	}
	if p.VirtualSize == 0 || p.VirtualSize > maxVirtualSize || p.VirtualSize%uint64(p.LogicalSectorSize) != 0 {
		return p, fmt.Errorf("virtual disk size %d is not a multiple of the sector size up to 64 TiB", p.VirtualSize)
	}
	if p.HasParent && p.Locator == nil {
		return p, errors.New("differencing disk without a parent locator")
	}
	return p, nil
}

// errUnknownLocator marks a parent locator of a type other than VHDX.
var errUnknownLocator = errors.New("unknown parent locator type")

// parseParentLocator decodes the key/value pairs of a VHDX parent locator.
func parseParentLocator(b []byte) (map[string]string, error) {
	var t guid
	copy(t[:], b[:16])
	if t != locatorTypeVHDX {
		return nil, fmt.Errorf("%w %s", errUnknownLocator, t)
	}
	n := int(le.Uint16(b[18:]))
	if 20+12*n > len(b) {
		return nil, fmt.Errorf("parent locator: %d entries do not fit in %d bytes", n, len(b))
	}
	str := func(off uint32, length uint16) (string, error) {
		if off == 0 || length == 0 || length%2 != 0 || uint64(off)+uint64(length) > uint64(len(b)) {
			return "", fmt.Errorf("parent locator: string at %d, %d bytes, outside the item (%d bytes)", off, length, len(b))
		}
		u := make([]uint16, length/2)
		for i := range u {
			u[i] = le.Uint16(b[int(off)+2*i:])
		}
		return string(utf16.Decode(u)), nil
	}
	out := make(map[string]string, n)
	for i := range n {
		e := b[20+12*i:]
		k, err := str(le.Uint32(e), le.Uint16(e[8:]))
		if err != nil {
			return nil, err
		}
		v, err := str(le.Uint32(e[4:]), le.Uint16(e[10:]))
		if err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("parent locator: key %q appears twice", k)
		}
		out[k] = v
	}
	return out, nil
}
