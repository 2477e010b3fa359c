package part

import (
	"encoding/binary"
	"fmt"
	"io"
)

const (
	mbrTableOffset = 0x1be
	maxLogical     = 256 // bound on an EBR chain
)

type mbrEntry struct {
	status byte
	typ    byte
	start  uint32 // LBA
	count  uint32 // sectors
}

func mbrEntries(sector []byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		b := sector[mbrTableOffset+16*i:]
		es[i] = mbrEntry{status: b[0], typ: b[4], start: binary.LittleEndian.Uint32(b[8:]), count: binary.LittleEndian.Uint32(b[12:])}
	}
	return es
}

func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0f || typ == 0x85 }

// isProtective reports whether the MBR holds a GPT protective entry.
func isProtective(mbr []byte) bool {
	for _, e := range mbrEntries(mbr) {
		if e.typ == 0xee {
			return true
		}
	}
	return false
}

// plausibleMBR tells a partition table from a boot sector (a FAT or NTFS
// volume without partitions also ends in 55 AA): status bytes are 0x00 or
// 0x80 and at least one entry is used.
func plausibleMBR(mbr []byte, size int64) bool {
	used := 0
	for _, e := range mbrEntries(mbr) {
		if e.status != 0 && e.status != 0x80 {
			return false
		}
		if e.typ == 0 {
			continue
		}
		if e.start == 0 || e.count == 0 {
			return false
		}
		used++
	}
	return used > 0
}

// readMBR reads the MBR partitions and the logical partitions of an
// extended partition, with LBAs of ss bytes.
func readMBR(r io.ReaderAt, size int64, ss int, mbr []byte) (*Table, error) {
	t := &Table{Type: "mbr", SectorSize: ss, DiskGUID: fmt.Sprintf("%08x", binary.LittleEndian.Uint32(mbr[440:]))}
	sectors := size / int64(ss)
	add := func(num int, e mbrEntry, base int64) error {
		start := base + int64(e.start)
		end := start + int64(e.count)
		if end > sectors {
			return fmt.Errorf("%w: MBR partition %d (LBAs %d..%d, %d-byte sectors) extends beyond the disk (%d sectors)", ErrInvalid, num, start, end-1, ss, sectors)
		}
		typeID := fmt.Sprintf("0x%02x", e.typ)
		t.Partitions = append(t.Partitions, Partition{
			Number:   num,
			Start:    start * int64(ss),
			Size:     int64(e.count) * int64(ss),
			Type:     mbrTypeName(e.typ),
			TypeID:   typeID,
			Bootable: e.status == 0x80,
			Extended: isExtended(e.typ),
		})
		return nil
	}
	var ext *mbrEntry
	for i, e := range mbrEntries(mbr) {
		if e.typ == 0 || e.count == 0 {
			continue
		}
		if err := add(i+1, e, 0); err != nil {
			return nil, err
		}
		if isExtended(e.typ) {
			if ext != nil {
				return nil, fmt.Errorf("%w: MBR has more than one extended partition", ErrInvalid)
			}
			ext = &e
		}
	}
	if ext == nil {
		return t, nil
	}
	// Walk the EBR chain: each EBR's first entry is a logical partition
	// relative to the EBR, its second the next EBR relative to the start
	// of the extended partition.
	extStart := int64(ext.start)
	extEnd := extStart + int64(ext.count)
	ebr := make([]byte, 512)
	seen := map[int64]bool{}
	num := 5
	for cur := extStart; ; {
		if seen[cur] || len(seen) >= maxLogical {
			return nil, fmt.Errorf("%w: EBR chain loops or is longer than %d at LBA %d", ErrInvalid, maxLogical, cur)
		}
		seen[cur] = true
		if cur < extStart || cur >= extEnd {
			return nil, fmt.Errorf("%w: EBR at LBA %d outside the extended partition (LBAs %d..%d)", ErrInvalid, cur, extStart, extEnd-1)
		}
		off := cur * int64(ss)
		if n, err := r.ReadAt(ebr, off); n < len(ebr) {
			return nil, fmt.Errorf("read EBR at offset %d: %w", off, err)
		}
		if ebr[510] != 0x55 || ebr[511] != 0xaa {
			return nil, fmt.Errorf("%w: EBR at offset %d has no 55 AA signature", ErrInvalid, off)
		}
		es := mbrEntries(ebr)
		if e := es[0]; e.typ != 0 && e.count != 0 {
			if cur+int64(e.start)+int64(e.count) > extEnd {
				return nil, fmt.Errorf("%w: logical partition %d in the EBR at offset %d extends beyond the extended partition", ErrInvalid, num, off)
			}
			if err := add(num, e, cur); err != nil {
				return nil, err
			}
			num++
		}
		next := es[1]
		if next.typ == 0 || next.start == 0 {
			break
		}
		cur = extStart + int64(next.start)
	}
	return t, nil
}
