package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// PackWriter assembles a pack from blobs that are already sealed, copied
// from other packs (prune's repack). The sealed bytes are copied as they
// are: each blob is sealed on its own with a random nonce, so it stays valid
// in any pack. The caller verifies a blob (OpenBlob) before adding it. A
// PackWriter is not safe for concurrent use.
type PackWriter struct {
	r     *Repository
	t     BlobType
	buf   []byte
	blobs []PackedBlob
}

// NewPackWriter returns an empty pack writer for blobs of type t.
func (r *Repository) NewPackWriter(t BlobType) *PackWriter {
	return &PackWriter{r: r, t: t}
}

// Add appends the sealed bytes of the blob pb (its type, id, lengths and
// compression flag; pack and offset are ignored).
func (w *PackWriter) Add(pb PackedBlob, sealed []byte) error {
	if pb.Type != w.t {
		return fmt.Errorf("add %s blob %s to a %s pack", pb.Type, pb.ID.Str(), w.t)
	}
	if len(sealed) != int(pb.Length) || len(sealed) < sealExtra {
		return fmt.Errorf("add blob %s: %d sealed bytes, want %d", pb.ID.Str(), len(sealed), pb.Length)
	}
	if uint64(len(w.buf))+uint64(len(sealed)) > 1<<32-1-maxHeaderSize {
		return errors.New("pack too large")
	}
	if w.buf == nil {
		// One allocation for a whole pack and its header, not a series of
		// doublings up to twice the pack size (Grow sets a smaller one).
		w.Grow(PackSize + PackSize/8)
	}
	pb.Offset = uint32(len(w.buf))
	pb.Pack = ID{}
	w.buf = append(w.buf, sealed...)
	w.blobs = append(w.blobs, pb)
	return nil
}

// Grow makes room for n more bytes (blobs and header) without
// reallocating, for callers that know how much they will add.
func (w *PackWriter) Grow(n int) {
	if cap(w.buf)-len(w.buf) < n {
		b := make([]byte, len(w.buf), len(w.buf)+n)
		copy(b, w.buf)
		w.buf = b
	}
}

// Size returns the bytes of the blobs added so far.
func (w *PackWriter) Size() int { return len(w.buf) }

// Count returns the number of blobs added so far.
func (w *PackWriter) Count() int { return len(w.blobs) }

// Finish writes the pack header, stores the pack and returns its index
// entry. It does not add the pack to the in-memory index nor write an index
// file: the caller writes the index file that lists it. The writer is empty
// afterwards and can be reused.
func (w *PackWriter) Finish(ctx context.Context) (IndexPack, error) {
	if len(w.blobs) == 0 {
		return IndexPack{}, errors.New("finish pack: no blobs")
	}
	hdr := w.r.crypt.seal(nil, encodeHeaderRecords(w.blobs))
	w.buf = append(w.buf, hdr...)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(hdr)))
	id := FileID(w.buf)
	if err := w.r.be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, w.buf); err != nil {
		return IndexPack{}, fmt.Errorf("save %s pack %s: %w", w.t, id.Str(), err)
	}
	ip := IndexPack{ID: id, Blobs: w.blobs}
	for i := range ip.Blobs {
		ip.Blobs[i].Pack = id
	}
	w.buf = w.buf[:0]
	w.blobs = nil
	return ip, nil
}

// IndexFiles returns the index files Open loaded (those not superseded),
// plus those written since.
func (r *Repository) IndexFiles() []ID {
	r.imu.Lock()
	defer r.imu.Unlock()
	return append([]ID(nil), r.indexFiles...)
}

// MaxIndexFileBlobs bounds the blobs per index file that CompactIndex and
// prune write.
const MaxIndexFileBlobs = maxIndexFileBlobs
