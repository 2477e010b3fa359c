// Package vhdx reads Microsoft VHDX (Virtual Hard Disk v2) images: fixed,
// dynamic and differencing.
//
// A VHDX starts with a 1 MiB header section: the "vhdxfile" identifier, two
// headers (the valid one with the larger sequence number is current) and two
// copies of the region table, which locates the block allocation table (BAT)
// and the metadata region. The metadata holds the block size (1–256 MiB), the
// virtual disk size, the logical sector size (512 or 4096) and, for
// differencing disks, the parent locator. The BAT maps each payload block to
// a 1 MiB-aligned file offset and a state; after every "chunk ratio" payload
// entries it holds one entry for a 1 MiB sector bitmap block, which says for
// each sector of a partially present block whether it lives in this file or
// in the parent. All integers are little-endian and every header, region
// table and log entry carries a CRC-32C.
//
// # Payload states
//
// FULLY_PRESENT blocks are read from the file. ZERO, UNMAPPED and UNDEFINED
// blocks read as zeros (the specification allows zeros for all three).
// NOT_PRESENT blocks read as zeros, except in a differencing disk, where they
// come from the parent, as do the sectors of a PARTIALLY_PRESENT block whose
// bitmap bit is clear.
//
// # The log
//
// VHDX updates its metadata through a write-ahead log. A header with a
// non-zero LogGuid means the log may hold updates that never reached their
// final place (the host crashed, or a hypervisor has the file open), so the
// BAT and metadata on disk may be torn. The reader never writes the source:
// it finds the active log sequence as the specification describes and replays
// it into an in-memory overlay of 4 KiB file sectors through which every later
// read of the file goes. Such an image is reported as in use (Info.InUse,
// reason "dirty log (replayed in memory)") and opens only with
// OpenOptions.Force; an image whose log cannot be replayed is refused.
package vhdx

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/bunkerbackup/bunker/vmdisk"
)

func init() {
	vmdisk.Register(vmdisk.Format{
		Name:  "vhdx",
		Probe: Probe,
		Open: func(path string, opts vmdisk.OpenOptions) (vmdisk.Image, error) {
			img, err := Open(path, opts)
			if err != nil {
				return nil, err
			}
			return img, nil
		},
		Priority: Priority,
	})
}

// Priority is the probe order of the vhdx format. Its signature is at offset
// 0, so it may come early; raw must come after it.
const Priority = 20

// Probe reports whether the file starts with the VHDX file type identifier.
func Probe(head, tail []byte, size int64) bool {
	return len(head) >= 8 && string(head[:8]) == "vhdxfile"
}

const (
	kiB = 1 << 10
	miB = 1 << 20

	header1Offset = 64 * kiB
	header2Offset = 128 * kiB
	region1Offset = 192 * kiB
	region2Offset = 256 * kiB
	headerSize    = 4 * kiB
	regionSize    = 64 * kiB
	metaTableSize = 64 * kiB

	// maxVirtualSize is the specification's limit, 64 TiB.
	maxVirtualSize = 64 << 40
	// chunkSectors is the number of sectors one sector bitmap block covers.
	chunkSectors = 1 << 23
	// maxLogLength bounds the log that is read into memory for replay.
	maxLogLength = 64 * miB
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c computes the CRC-32C of b with the four checksum bytes at off
// taken as zero.
func crc32c(b []byte, off int) uint32 {
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	return crc32.Update(c, castagnoli, b[off+4:])
}

// guid is a GUID in its on-disk (mixed-endian) form.
type guid [16]byte

// mustGUID parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into on-disk form.
func mustGUID(s string) guid {
	g, err := parseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// parseGUID parses a GUID string, with or without braces.
func parseGUID(s string) (guid, error) {
	var g guid
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}")
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("malformed GUID %q", s)
	}
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(b[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(b[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(b[6:]))
	copy(g[8:], b[8:])
	return g, nil
}

// String formats the GUID as Windows does, without braces, lower case.
func (g guid) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:])
}

func (g guid) isZero() bool { return g == guid{} }

// Known regions, metadata items and parent locator type.
var (
	regionBAT      = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	regionMetadata = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")

	itemFileParameters     = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	itemVirtualDiskSize    = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	itemVirtualDiskID      = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	itemLogicalSectorSize  = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	itemPhysicalSectorSize = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	itemParentLocator      = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")

	locatorTypeVHDX = mustGUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
)

// BAT entry states.
const (
	payloadNotPresent       = 0
	payloadUndefined        = 1
	payloadZero             = 2
	payloadUnmapped         = 3
	payloadUnmappedV095     = 5 // written by pre-1.0 implementations; qemu reads it as unmapped
	payloadFullyPresent     = 6
	payloadPartiallyPresent = 7

	bitmapNotPresent = 0
	bitmapPresent    = 6
)
