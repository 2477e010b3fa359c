package qcow2

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// Magic is the first four bytes of every qcow2 file.
const Magic = "QFI\xfb"

// Incompatible feature bits (header offset 72, version 3).
const (
	incompatDirty       = 1 << 0
	incompatCorrupt     = 1 << 1
	incompatDataFile    = 1 << 2
	incompatCompression = 1 << 3
	incompatExtendedL2  = 1 << 4
	incompatKnown       = incompatDirty | incompatCorrupt | incompatDataFile | incompatCompression | incompatExtendedL2
)

// Header extension types.
const (
	extEnd            = 0x00000000
	extBackingFormat  = 0xe2792aca
	extFeatureNames   = 0x6803f857
	maxBackingNameLen = 1023
)

// Compression types (header offset 104).
const (
	compressionZlib = 0
	compressionZstd = 1
)

const (
	v2HeaderLen = 72
	v3HeaderLen = 104
	// maxL1Bytes is qemu's QCOW_MAX_L1_SIZE: larger L1 tables are refused.
	maxL1Bytes = 32 << 20
	// offsetMask selects bits 9..55 of L1 and standard L2 entries.
	offsetMask = 0x00fffffffffffe00
)

// header is the parsed, validated qcow2 header.
type header struct {
	version        uint32
	backingOffset  uint64
	backingSize    uint32
	clusterBits    uint32
	size           int64
	cryptMethod    uint32
	l1Size         uint32
	l1Offset       int64
	incompat       uint64
	compat         uint64
	autoclear      uint64
	refcountOrder  uint32
	headerLen      uint32
	compression    uint8
	backingName    string
	backingFormat  string
	featureNames   map[int]string // incompatible feature bit -> name
	extendedL2     bool
	clusterSize    int64
	l2Entries      int64 // entries per L2 table
	l2EntrySize    int64 // 8, or 16 with extended L2
	l1Needed       int64 // L1 entries covering size
	subclusterSize int64 // clusterSize/32 with extended L2, else clusterSize
}

// formatErr builds a *vmdisk.FormatError for this format.
func formatErr(path, structure string, off int64, format string, args ...any) error {
	return &vmdisk.FormatError{Format: "qcow2", Path: path, Struct: structure, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// parseHeader reads and validates the header and its extensions. fileSize
// bounds every table the header points to.
func parseHeader(r io.ReaderAt, fileSize int64, path string) (*header, error) {
	if fileSize < v2HeaderLen {
		return nil, formatErr(path, "header", 0, "file is %d bytes, shorter than a qcow2 header", fileSize)
	}
	buf := make([]byte, min(fileSize, 4096))
	if n, err := r.ReadAt(buf, 0); n < len(buf) {
		return nil, &vmdisk.FormatError{Format: "qcow2", Path: path, Struct: "header", Offset: 0, Msg: "read failed", Err: err}
	}
	be := binary.BigEndian
	if string(buf[:4]) != Magic {
		return nil, formatErr(path, "header", 0, "bad magic %q", buf[:4])
	}
	h := &header{
		version:       be.Uint32(buf[4:]),
		backingOffset: be.Uint64(buf[8:]),
		backingSize:   be.Uint32(buf[16:]),
		clusterBits:   be.Uint32(buf[20:]),
		cryptMethod:   be.Uint32(buf[32:]),
		l1Size:        be.Uint32(buf[36:]),
		refcountOrder: 4,
		headerLen:     v2HeaderLen,
	}
	size := be.Uint64(buf[24:])
	l1Offset := be.Uint64(buf[40:])
	switch h.version {
	case 2:
	case 3:
		if len(buf) < v3HeaderLen {
			return nil, formatErr(path, "header", 0, "version 3 header truncated (file is %d bytes)", fileSize)
		}
		h.incompat = be.Uint64(buf[72:])
		h.compat = be.Uint64(buf[80:])
		h.autoclear = be.Uint64(buf[88:])
		h.refcountOrder = be.Uint32(buf[96:])
		h.headerLen = be.Uint32(buf[100:])
		if h.headerLen < v3HeaderLen {
			return nil, formatErr(path, "header", 100, "header length %d is shorter than %d", h.headerLen, v3HeaderLen)
		}
		if int64(h.headerLen) > int64(len(buf)) {
			return nil, formatErr(path, "header", 100, "header length %d exceeds the first %d bytes of the file", h.headerLen, len(buf))
		}
		if h.headerLen > v3HeaderLen {
			h.compression = buf[104]
		}
	default:
		return nil, fmt.Errorf("%s: qcow2 version %d: %w", path, h.version, vmdisk.ErrUnsupported)
	}
	if h.clusterBits < 9 || h.clusterBits > 21 {
		return nil, formatErr(path, "header", 20, "cluster_bits %d outside 9..21", h.clusterBits)
	}
	h.clusterSize = 1 << h.clusterBits
	if h.refcountOrder > 6 {
		return nil, formatErr(path, "header", 96, "refcount_order %d is larger than 6", h.refcountOrder)
	}
	if size > 1<<62 {
		return nil, formatErr(path, "header", 24, "virtual size %d is too large", size)
	}
	h.size = int64(size)

	// Feature names first so refusals below can name unknown bits.
	extEndOff := h.clusterSize
	if h.backingOffset != 0 && h.backingOffset < uint64(extEndOff) {
		extEndOff = int64(h.backingOffset)
	}
	if err := h.parseExtensions(r, fileSize, path, extEndOff); err != nil {
		return nil, err
	}

	if h.cryptMethod != 0 {
		name := map[uint32]string{1: "AES", 2: "LUKS"}[h.cryptMethod]
		if name == "" {
			name = fmt.Sprintf("method %d", h.cryptMethod)
		}
		return nil, fmt.Errorf("%s: encrypted qcow2 (%s): %w", path, name, vmdisk.ErrUnsupported)
	}
	if h.incompat&incompatCorrupt != 0 {
		return nil, fmt.Errorf("%s: qcow2 image is marked corrupt by qemu (run qemu-img check -r all on a copy): %w", path, vmdisk.ErrUnsupported)
	}
	if h.incompat&incompatDataFile != 0 {
		return nil, fmt.Errorf("%s: qcow2 with an external data file: %w", path, vmdisk.ErrUnsupported)
	}
	if unknown := h.incompat &^ incompatKnown; unknown != 0 {
		var names []string
		for bit := range 64 {
			if unknown&(1<<bit) != 0 {
				if n := h.featureNames[bit]; n != "" {
					names = append(names, fmt.Sprintf("bit %d (%s)", bit, n))
				} else {
					names = append(names, fmt.Sprintf("bit %d", bit))
				}
			}
		}
		return nil, fmt.Errorf("%s: qcow2 unknown incompatible features %s: %w", path, strings.Join(names, ", "), vmdisk.ErrUnsupported)
	}
	switch h.compression {
	case compressionZlib, compressionZstd:
	default:
		return nil, fmt.Errorf("%s: qcow2 compression type %d: %w", path, h.compression, vmdisk.ErrUnsupported)
	}
	if h.compression != compressionZlib && h.incompat&incompatCompression == 0 {
		return nil, formatErr(path, "header", 104, "compression type %d without the compression-type feature bit", h.compression)
	}

	h.l2EntrySize = 8
	h.subclusterSize = h.clusterSize
	if h.incompat&incompatExtendedL2 != 0 {
		if h.clusterBits < 14 {
			return nil, formatErr(path, "header", 20, "extended L2 entries need clusters of at least 16 KiB, have %d bytes", h.clusterSize)
		}
		h.extendedL2 = true
		h.l2EntrySize = 16
		h.subclusterSize = h.clusterSize / 32
	}
	h.l2Entries = h.clusterSize / h.l2EntrySize
	cover := h.clusterSize * h.l2Entries // bytes mapped by one L1 entry
	h.l1Needed = h.size / cover
	if h.size%cover != 0 {
		h.l1Needed++
	}
	if int64(h.l1Size) < h.l1Needed {
		return nil, formatErr(path, "header", 36, "L1 table has %d entries, virtual size %d needs %d", h.l1Size, h.size, h.l1Needed)
	}
	if int64(h.l1Size)*8 > maxL1Bytes {
		return nil, formatErr(path, "header", 36, "L1 table of %d entries is larger than %d bytes", h.l1Size, maxL1Bytes)
	}
	if h.l1Needed > 0 {
		if l1Offset%uint64(h.clusterSize) != 0 {
			return nil, formatErr(path, "header", 40, "L1 table offset %#x is not cluster aligned", l1Offset)
		}
		if l1Offset > uint64(fileSize) || uint64(fileSize)-l1Offset < uint64(h.l1Needed)*8 {
			return nil, formatErr(path, "L1 table", int64(min(l1Offset, 1<<62)), "L1 table (%d entries) extends beyond the end of the file (%d bytes)", h.l1Needed, fileSize)
		}
	}
	h.l1Offset = int64(min(l1Offset, 1<<62))

	if h.backingOffset != 0 {
		if h.backingSize == 0 || h.backingSize > maxBackingNameLen {
			return nil, formatErr(path, "header", 16, "backing file name length %d outside 1..%d", h.backingSize, maxBackingNameLen)
		}
		if h.backingOffset > uint64(fileSize) || uint64(fileSize)-h.backingOffset < uint64(h.backingSize) {
			return nil, formatErr(path, "backing file name", int64(min(h.backingOffset, 1<<62)), "name (%d bytes) extends beyond the end of the file", h.backingSize)
		}
		name := make([]byte, h.backingSize)
		if _, err := r.ReadAt(name, int64(h.backingOffset)); err != nil {
			return nil, &vmdisk.FormatError{Format: "qcow2", Path: path, Struct: "backing file name", Offset: int64(h.backingOffset), Msg: "read failed", Err: err}
		}
		h.backingName = string(name)
	}
	return h, nil
}

// parseExtensions reads the header extensions between the end of the
// header and end.
func (h *header) parseExtensions(r io.ReaderAt, fileSize int64, path string, end int64) error {
	off := int64(h.headerLen)
	end = min(end, fileSize)
	hdr := make([]byte, 8)
	for off+8 <= end {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return &vmdisk.FormatError{Format: "qcow2", Path: path, Struct: "header extension", Offset: off, Msg: "read failed", Err: err}
		}
		typ := binary.BigEndian.Uint32(hdr)
		length := int64(binary.BigEndian.Uint32(hdr[4:]))
		if typ == extEnd {
			return nil
		}
		dataOff := off + 8
		if length > end-dataOff {
			return formatErr(path, "header extension", off, "extension %#08x of %d bytes extends beyond the header area (%d bytes)", typ, length, end)
		}
		data := make([]byte, length)
		if _, err := r.ReadAt(data, dataOff); err != nil {
			return &vmdisk.FormatError{Format: "qcow2", Path: path, Struct: "header extension", Offset: off, Msg: "read failed", Err: err}
		}
		switch typ {
		case extBackingFormat:
			h.backingFormat = string(data)
		case extFeatureNames:
			h.featureNames = map[int]string{}
			for i := 0; i+48 <= len(data); i += 48 {
				if data[i] == 0 { // incompatible
					h.featureNames[int(data[i+1])] = strings.TrimRight(string(data[i+2:i+48]), "\x00")
				}
			}
		}
		off = dataOff + (length+7)&^7
	}
	return nil
}
