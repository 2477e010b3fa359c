package part

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

const (
	gptSignature  = "EFI PART"
	gptRevision   = 0x00010000
	gptMinHeader  = 92
	maxEntryBytes = 4 << 20 // bound on the entry array (the spec's minimum is 16 KiB)
)

// readGPT reads the primary (LBA 1) or backup (last LBA) GPT for sector
// size ss. It returns nil, nil when there is no GPT signature there.
func readGPT(r io.ReaderAt, size int64, ss int, primary bool) (*Table, error) {
	sectors := size / int64(ss)
	if sectors < 3 {
		return nil, nil
	}
	lastLBA := sectors - 1
	lba, where := int64(1), "primary GPT header"
	if !primary {
		lba, where = lastLBA, "backup GPT header"
	}
	off := lba * int64(ss)
	hdr := make([]byte, ss)
	if n, err := r.ReadAt(hdr, off); n < len(hdr) {
		return nil, fmt.Errorf("read %s at offset %d: %w", where, off, err)
	}
	if string(hdr[:8]) != gptSignature {
		return nil, nil
	}
	le := binary.LittleEndian
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s (%d-byte sectors) at offset %d: %s", ErrInvalid, where, ss, off, fmt.Sprintf(format, args...))
	}
	hsize := le.Uint32(hdr[12:])
	if hsize < gptMinHeader || int(hsize) > ss {
		return nil, bad("header size %d outside %d..%d", hsize, gptMinHeader, ss)
	}
	want := le.Uint32(hdr[16:])
	h := append([]byte(nil), hdr[:hsize]...)
	clear(h[16:20])
	if got := crc32.ChecksumIEEE(h); got != want {
		return nil, bad("header CRC32 is %08x, computed %08x", want, got)
	}
	var warnings []string
	if rev := le.Uint32(hdr[8:]); rev != gptRevision {
		warnings = append(warnings, fmt.Sprintf("%s has revision %#08x", where, rev))
	}
	if my := le.Uint64(hdr[24:]); my != uint64(lba) {
		return nil, bad("header says it is at LBA %d", my)
	}
	firstUsable, lastUsable := le.Uint64(hdr[40:]), le.Uint64(hdr[48:])
	if firstUsable > lastUsable || lastUsable > uint64(lastLBA) {
		return nil, bad("usable LBAs %d..%d outside the disk (last LBA %d)", firstUsable, lastUsable, lastLBA)
	}
	entryLBA := le.Uint64(hdr[72:])
	count, esize := le.Uint32(hdr[80:]), le.Uint32(hdr[84:])
	if esize < 128 || esize%8 != 0 || esize > 4096 {
		return nil, bad("partition entry size %d", esize)
	}
	total := uint64(count) * uint64(esize)
	if total > maxEntryBytes {
		return nil, bad("%d partition entries of %d bytes exceed %d bytes", count, esize, maxEntryBytes)
	}
	if entryLBA < 2 && primary || entryLBA > uint64(lastLBA) || entryLBA*uint64(ss)+total > uint64(size) {
		return nil, bad("partition entries (%d at LBA %d) outside the disk", count, entryLBA)
	}
	entries := make([]byte, total)
	eoff := int64(entryLBA) * int64(ss)
	if n, err := r.ReadAt(entries, eoff); n < len(entries) {
		return nil, fmt.Errorf("read GPT partition entries at offset %d: %w", eoff, err)
	}
	if got, want := crc32.ChecksumIEEE(entries), le.Uint32(hdr[88:]); got != want {
		return nil, bad("partition entry array CRC32 is %08x, computed %08x", want, got)
	}
	t := &Table{Type: "gpt", SectorSize: ss, DiskGUID: formatGUID(hdr[56:72]), Warnings: warnings}
	for i := range int(count) {
		e := entries[i*int(esize):]
		if allZero(e[:16]) {
			continue
		}
		start, end := le.Uint64(e[32:]), le.Uint64(e[40:])
		if start > end || start < 1 {
			return nil, bad("entry %d: LBAs %d..%d", i+1, start, end)
		}
		if end > uint64(lastLBA) {
			return nil, bad("entry %d: LBAs %d..%d beyond the last LBA %d", i+1, start, end, lastLBA)
		}
		typeID := formatGUID(e[:16])
		attrs := le.Uint64(e[48:])
		t.Partitions = append(t.Partitions, Partition{
			Number:     i + 1,
			Start:      int64(start) * int64(ss),
			Size:       int64(end-start+1) * int64(ss),
			Type:       gptTypeName(typeID),
			TypeID:     typeID,
			Name:       utf16Name(e[56:128]),
			GUID:       formatGUID(e[16:32]),
			Attributes: attrs,
			Bootable:   attrs&(1<<2) != 0,
		})
	}
	return t, nil
}

// formatGUID formats a GUID stored in the mixed-endian on-disk layout.
func formatGUID(b []byte) string {
	le := binary.LittleEndian
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16]))
}

// utf16Name decodes a NUL-terminated UTF-16LE name.
func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
