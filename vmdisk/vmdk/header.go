package vmdk

import (
	"encoding/binary"
	"fmt"
)

// Sparse extent header constants (VMware Virtual Disk Format 1.1).
const (
	sparseMagic = 0x564D444B // "KDMV"
	cowdMagic   = 0x44574F43 // "COWD": VMDK3 / ESXi vmfsSparse
	// SESparse extent header constant (ESXi 6.5+).
	seSparseMagic = 0x00000000CAFEBABE
	sector        = 512
	headerSize    = 512
	gdAtEnd       = ^uint64(0)

	flagNewlineTest = 1 << 0
	flagRedundantGT = 1 << 1
	flagZeroedGTE   = 1 << 2
	flagCompressed  = 1 << 16
	flagMarkers     = 1 << 17

	compressNone    = 0
	compressDeflate = 1

	// Bounds beyond which a header is rejected as corrupt.
	maxGrainSectors  = 1 << 16 // 32 MiB grains
	maxGTEsPerGT     = 512     // as qemu
	maxCapacity      = 1 << 40 // sectors (512 TiB)
	maxDescriptorLen = 1 << 20
)

// Stream marker types.
const (
	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3
)

// header is a hosted sparse extent header.
type header struct {
	Version           uint32
	Flags             uint32
	Capacity          uint64 // sectors
	GrainSize         uint64 // sectors
	DescriptorOffset  uint64 // sectors
	DescriptorSize    uint64 // sectors
	NumGTEsPerGT      uint32
	RGDOffset         uint64 // sectors
	GDOffset          uint64 // sectors, gdAtEnd in VMware streams
	OverHead          uint64 // sectors
	UncleanShutdown   bool
	Newline           [4]byte // "\n \r\n" when intact
	CompressAlgorithm uint16
}

// parseHeader decodes a sparse extent header and checks the fields that
// do not depend on the file around it. It returns a message describing
// the first problem, or "".
func parseHeader(b []byte) (header, string) {
	var h header
	if len(b) < headerSize {
		return h, fmt.Sprintf("header truncated to %d bytes", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[0:]); m != sparseMagic {
		return h, fmt.Sprintf("bad magic %#08x", m)
	}
	h.Version = le.Uint32(b[4:])
	h.Flags = le.Uint32(b[8:])
	h.Capacity = le.Uint64(b[12:])
	h.GrainSize = le.Uint64(b[20:])
	h.DescriptorOffset = le.Uint64(b[28:])
	h.DescriptorSize = le.Uint64(b[36:])
	h.NumGTEsPerGT = le.Uint32(b[44:])
	h.RGDOffset = le.Uint64(b[48:])
	h.GDOffset = le.Uint64(b[56:])
	h.OverHead = le.Uint64(b[64:])
	h.UncleanShutdown = b[72] != 0
	copy(h.Newline[:], b[73:77])
	h.CompressAlgorithm = le.Uint16(b[77:])

	switch {
	case h.Version < 1 || h.Version > 3:
		return h, fmt.Sprintf("unknown version %d", h.Version)
	case h.GrainSize == 0 || h.GrainSize&(h.GrainSize-1) != 0 || h.GrainSize > maxGrainSectors:
		return h, fmt.Sprintf("grain size %d sectors is not a power of two up to %d", h.GrainSize, maxGrainSectors)
	case h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > maxGTEsPerGT:
		return h, fmt.Sprintf("%d entries per grain table (want 1..%d)", h.NumGTEsPerGT, maxGTEsPerGT)
	case h.Capacity > maxCapacity:
		return h, fmt.Sprintf("capacity %d sectors too large", h.Capacity)
	case h.Flags&flagNewlineTest != 0 && h.Newline != [4]byte{'\n', ' ', '\r', '\n'}:
		return h, "newline test bytes damaged (file transferred in text mode?)"
	case h.DescriptorSize > maxDescriptorLen/sector:
		return h, fmt.Sprintf("descriptor of %d sectors too large", h.DescriptorSize)
	case h.DescriptorOffset > maxCapacity || h.RGDOffset > maxCapacity || h.OverHead > maxCapacity ||
		(h.GDOffset > maxCapacity && h.GDOffset != gdAtEnd):
		return h, "metadata offset out of range"
	}
	if h.Flags&flagCompressed != 0 && h.CompressAlgorithm != compressDeflate {
		return h, fmt.Sprintf("unknown compression algorithm %d", h.CompressAlgorithm)
	}
	if h.Flags&flagCompressed == 0 && h.CompressAlgorithm != compressNone && h.CompressAlgorithm != compressDeflate {
		return h, fmt.Sprintf("unknown compression algorithm %d", h.CompressAlgorithm)
	}
	return h, ""
}

func (h *header) compressed() bool { return h.Flags&flagCompressed != 0 }

// zeroedGTE reports whether grain table entry 1 means "grain reads as
// zeros" (version 2+ with the flag, and every stream-optimized extent).
func (h *header) zeroedGTE() bool { return h.Flags&flagZeroedGTE != 0 || h.Version >= 2 }

// gdEntries is the number of grain directory entries for the capacity.
func (h *header) gdEntries() uint64 {
	per := uint64(h.NumGTEsPerGT) * h.GrainSize
	return (h.Capacity + per - 1) / per
}

// marshal encodes the header into a 512-byte sector.
func (h *header) marshal() []byte {
	b := make([]byte, headerSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], sparseMagic)
	le.PutUint32(b[4:], h.Version)
	le.PutUint32(b[8:], h.Flags)
	le.PutUint64(b[12:], h.Capacity)
	le.PutUint64(b[20:], h.GrainSize)
	le.PutUint64(b[28:], h.DescriptorOffset)
	le.PutUint64(b[36:], h.DescriptorSize)
	le.PutUint32(b[44:], h.NumGTEsPerGT)
	le.PutUint64(b[48:], h.RGDOffset)
	le.PutUint64(b[56:], h.GDOffset)
	le.PutUint64(b[64:], h.OverHead)
	if h.UncleanShutdown {
		b[72] = 1
	}
	copy(b[73:77], "\n \r\n")
	le.PutUint16(b[77:], h.CompressAlgorithm)
	return b
}

// marker builds a stream metadata marker sector.
func marker(numSectors uint64, typ uint32) []byte {
	b := make([]byte, sector)
	binary.LittleEndian.PutUint64(b[0:], numSectors)
	binary.LittleEndian.PutUint32(b[12:], typ)
	return b
}
