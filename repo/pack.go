package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// A pack is: sealed blob 1 || ... || sealed blob N || sealed header ||
// uint32 LE length of the sealed header. The header plaintext is one
// 44-byte record per blob, in the order of the blobs:
//
//	type u8 | compressed u8 | reserved u16 | sealed length u32 LE |
//	plaintext length u32 LE | id [32]
//
// A blob's offset is the sum of the sealed lengths before it.
const (
	headerRecordSize = 44
	packTrailerSize  = 4
	// maxHeaderSize bounds the header of a pack read from a backend.
	maxHeaderSize = 16 << 20
	// eagerTail is how many bytes of a pack's end are read at once, which
	// holds the whole header of a typical pack.
	eagerTail = 64 << 10
)

// PackedBlob is one blob in a pack.
type PackedBlob struct {
	Type        BlobType
	ID          ID
	Pack        ID
	Offset      uint32 // of the sealed blob in the pack
	Length      uint32 // sealed length (what the pack stores)
	PlainLength uint32 // plaintext length
	Compressed  bool
}

// header records without pack and offsets: the encoder input.
func encodeHeaderRecords(blobs []PackedBlob) []byte {
	b := make([]byte, 0, len(blobs)*headerRecordSize)
	for _, pb := range blobs {
		b = appendRecord(b, pb)
	}
	return b
}

func appendRecord(b []byte, pb PackedBlob) []byte {
	var c byte
	if pb.Compressed {
		c = 1
	}
	b = append(b, byte(pb.Type), c, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, pb.Length)
	b = binary.LittleEndian.AppendUint32(b, pb.PlainLength)
	return append(b, pb.ID[:]...)
}

func decodeRecord(b []byte) (PackedBlob, error) {
	pb := PackedBlob{
		Type:        BlobType(b[0]),
		Length:      binary.LittleEndian.Uint32(b[4:]),
		PlainLength: binary.LittleEndian.Uint32(b[8:]),
	}
	copy(pb.ID[:], b[12:44])
	if pb.Type != DataBlob && pb.Type != TreeBlob {
		return pb, fmt.Errorf("invalid blob type %d", b[0])
	}
	switch b[1] {
	case 0:
	case 1:
		pb.Compressed = true
	default:
		return pb, fmt.Errorf("invalid compression flag %d", b[1])
	}
	if b[2] != 0 || b[3] != 0 {
		return pb, errors.New("reserved header bytes are not zero")
	}
	if pb.Length < sealExtra {
		return pb, fmt.Errorf("sealed length %d too short", pb.Length)
	}
	if !pb.Compressed && pb.PlainLength != pb.Length-sealExtra {
		return pb, fmt.Errorf("uncompressed blob with plaintext length %d and sealed length %d", pb.PlainLength, pb.Length)
	}
	return pb, nil
}

// parsePackHeader decodes header plaintext for a pack of packSize bytes whose
// sealed header is headerLen bytes. It checks that the blobs exactly fill the
// pack before the header.
func parsePackHeader(plain []byte, pack ID, packSize int64, headerLen int) ([]PackedBlob, error) {
	if len(plain) == 0 || len(plain)%headerRecordSize != 0 {
		return nil, fmt.Errorf("invalid header length %d", len(plain))
	}
	blobs := make([]PackedBlob, 0, len(plain)/headerRecordSize)
	var off int64
	for i := 0; i < len(plain); i += headerRecordSize {
		pb, err := decodeRecord(plain[i : i+headerRecordSize])
		if err != nil {
			return nil, fmt.Errorf("header record %d: %w", i/headerRecordSize, err)
		}
		pb.Pack = pack
		pb.Offset = uint32(off)
		off += int64(pb.Length)
		if off > packSize || off > 1<<32-1 {
			return nil, fmt.Errorf("header record %d: blob extends beyond the pack", i/headerRecordSize)
		}
		blobs = append(blobs, pb)
	}
	if want := packSize - int64(headerLen) - packTrailerSize; off != want {
		return nil, fmt.Errorf("blobs fill %d bytes, pack holds %d before the header", off, want)
	}
	return blobs, nil
}

// readPackHeader decodes the header from the tail of a pack: tail holds the
// last len(tail) bytes of a pack of packSize bytes. It returns the number of
// tail bytes needed when tail is too short.
func (c *crypter) readPackHeader(tail []byte, pack ID, packSize int64) ([]PackedBlob, int, error) {
	if packSize < packTrailerSize+sealExtra+headerRecordSize || len(tail) < packTrailerSize {
		return nil, 0, fmt.Errorf("pack too short (%d bytes)", packSize)
	}
	hl := int64(binary.LittleEndian.Uint32(tail[len(tail)-packTrailerSize:]))
	if hl < sealExtra+headerRecordSize || hl > maxHeaderSize || hl+packTrailerSize > packSize {
		return nil, 0, fmt.Errorf("invalid header length %d in pack of %d bytes", hl, packSize)
	}
	need := int(hl) + packTrailerSize
	if len(tail) < need {
		return nil, need, nil
	}
	sealed := tail[len(tail)-need : len(tail)-packTrailerSize]
	plain, err := c.open(nil, sealed)
	if err != nil {
		return nil, 0, fmt.Errorf("open header: %w", err)
	}
	blobs, err := parsePackHeader(plain, pack, packSize, int(hl))
	if err != nil {
		return nil, 0, err
	}
	return blobs, 0, nil
}

// LoadPackHeader reads and decodes the header of a pack. It reads the end of
// the pack only.
func (r *Repository) LoadPackHeader(ctx context.Context, pack ID) ([]PackedBlob, error) {
	h := backend.Handle{Type: backend.PackFile, Name: pack.String()}
	fi, err := r.be.Stat(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("load header of pack %s: %w", pack.Str(), err)
	}
	n := min(fi.Size, eagerTail)
	tail, err := r.be.Load(ctx, h, fi.Size-n, n)
	if err != nil {
		return nil, fmt.Errorf("load header of pack %s: %w", pack.Str(), err)
	}
	blobs, need, err := r.crypt.readPackHeader(tail, pack, fi.Size)
	if err == nil && need > 0 {
		tail, err = r.be.Load(ctx, h, fi.Size-int64(need), int64(need))
		if err != nil {
			return nil, fmt.Errorf("load header of pack %s: %w", pack.Str(), err)
		}
		blobs, _, err = r.crypt.readPackHeader(tail, pack, fi.Size)
	}
	if err != nil {
		return nil, fmt.Errorf("header of pack %s: %w", pack.Str(), err)
	}
	return blobs, nil
}

// ParsePack decodes the header of a whole pack held in memory.
func (r *Repository) ParsePack(pack ID, data []byte) ([]PackedBlob, error) {
	blobs, _, err := r.crypt.readPackHeader(data, pack, int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("header of pack %s: %w", pack.Str(), err)
	}
	return blobs, nil
}

// ListPacks returns the packs in the backend and their sizes.
func (r *Repository) ListPacks(ctx context.Context) (map[ID]int64, error) {
	packs := make(map[ID]int64)
	err := r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil // not a pack; check reports unknown files
		}
		packs[id] = fi.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	return packs, nil
}
