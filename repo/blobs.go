package repo

import (
	"context"
	"encoding/binary"
	"fmt"
)

// SaveTree validates, encodes and stores a tree blob and returns its id.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) {
	if err := ValidateTree(t); err != nil {
		return ID{}, fmt.Errorf("save tree: %w", err)
	}
	b, err := encodeTree(t)
	if err != nil {
		return ID{}, fmt.Errorf("save tree: %w", err)
	}
	id := r.BlobID(b)
	if _, _, err := r.SaveBlob(ctx, TreeBlob, id, b); err != nil {
		return ID{}, fmt.Errorf("save tree %s: %w", id.Str(), err)
	}
	return id, nil
}

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Str(), err)
	}
	return t, nil
}

// Disk chunk lists are tree blobs of 48-byte records:
//
//	offset u64 LE | length u32 LE | reserved u32 (0) | id [32]
//
// sorted by offset and not overlapping, at most MaxChunkListRecords per blob.
const (
	chunkRecordSize = 48
	// MaxChunkListRecords is the number of records per chunk-list blob.
	MaxChunkListRecords = 16384
)

func encodeChunkList(chunks []DiskChunk) []byte {
	b := make([]byte, 0, len(chunks)*chunkRecordSize)
	for _, c := range chunks {
		b = binary.LittleEndian.AppendUint64(b, c.Offset)
		b = binary.LittleEndian.AppendUint32(b, c.Length)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = append(b, c.ID[:]...)
	}
	return b
}

// chunkListDecoder decodes chunk-list blobs and checks order across blobs.
type chunkListDecoder struct {
	end     uint64 // end of the previous chunk
	started bool
}

func (d *chunkListDecoder) decode(b []byte, fn func(DiskChunk) error) error {
	if len(b) == 0 || len(b)%chunkRecordSize != 0 || len(b)/chunkRecordSize > MaxChunkListRecords {
		return fmt.Errorf("invalid chunk list length %d", len(b))
	}
	for i := 0; i < len(b); i += chunkRecordSize {
		r := b[i : i+chunkRecordSize]
		c := DiskChunk{Offset: binary.LittleEndian.Uint64(r), Length: binary.LittleEndian.Uint32(r[8:])}
		copy(c.ID[:], r[16:])
		if binary.LittleEndian.Uint32(r[12:]) != 0 {
			return fmt.Errorf("chunk record %d: reserved bytes are not zero", i/chunkRecordSize)
		}
		if c.Length == 0 {
			return fmt.Errorf("chunk record %d: zero length", i/chunkRecordSize)
		}
		if d.started && c.Offset < d.end {
			return fmt.Errorf("chunk record %d: offset %d overlaps or precedes the previous chunk ending at %d", i/chunkRecordSize, c.Offset, d.end)
		}
		end := c.Offset + uint64(c.Length)
		if end < c.Offset || end > 1<<63 {
			return fmt.Errorf("chunk record %d: offset %d beyond the largest disk", i/chunkRecordSize, c.Offset)
		}
		d.end, d.started = end, true
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// SaveChunkList stores a disk's chunk list (sorted by offset, not
// overlapping) as tree blobs of at most MaxChunkListRecords records and
// returns their ids in order.
func (r *Repository) SaveChunkList(ctx context.Context, chunks []DiskChunk) ([]ID, error) {
	var d chunkListDecoder
	ids := []ID{}
	for len(chunks) > 0 {
		n := min(len(chunks), MaxChunkListRecords)
		b := encodeChunkList(chunks[:n])
		if err := d.decode(b, func(DiskChunk) error { return nil }); err != nil {
			return nil, fmt.Errorf("save chunk list: %w", err)
		}
		id := r.BlobID(b)
		if _, _, err := r.SaveBlob(ctx, TreeBlob, id, b); err != nil {
			return nil, fmt.Errorf("save chunk list: %w", err)
		}
		ids = append(ids, id)
		chunks = chunks[n:]
	}
	return ids, nil
}

// LoadChunkList calls fn for every chunk of the chunk-list blobs ids, in
// order. An error from fn stops the walk and is returned.
func (r *Repository) LoadChunkList(ctx context.Context, ids []ID, fn func(DiskChunk) error) error {
	var d chunkListDecoder
	var buf []byte
	for _, id := range ids {
		b, err := r.LoadBlob(ctx, TreeBlob, id, buf)
		if err != nil {
			return fmt.Errorf("load chunk list: %w", err)
		}
		if err := d.decode(b, fn); err != nil {
			return fmt.Errorf("chunk list %s: %w", id.Str(), err)
		}
		buf = b
	}
	return nil
}
