package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/bunkerbackup/bunker/repo/backend"
	"golang.org/x/sync/errgroup"
)

// IndexFile is the content of one file in index/: the blobs of some packs,
// and the index files it replaces (written by prune; a reader ignores a
// superseded index file that still exists).
type IndexFile struct {
	Supersedes []ID
	Packs      []IndexPack
}

// IndexPack lists the blobs of one pack.
type IndexPack struct {
	ID    ID
	Blobs []PackedBlob // ordered by offset
}

// Index file plaintext (after opening the seal):
//
//	version u8 (1) | reserved [3]u8 (0) | body length u32 LE | zstd frame of the body
//
// Body:
//
//	supersedes count u32 LE | count × id [32]
//	pack count u32 LE
//	per pack: pack id [32] | blob count u32 LE | count × record
//	record (48 bytes): type u8 | compressed u8 | reserved u16 | offset u32 LE |
//	                   sealed length u32 LE | plaintext length u32 LE | id [32]
const (
	indexVersion       = 1
	indexPrefixSize    = 8
	indexRecordSize    = 48
	maxIndexBodyLength = 1 << 30
)

func encodeIndexFile(f *IndexFile) []byte {
	n := 8 + len(f.Supersedes)*IDSize
	for _, p := range f.Packs {
		n += IDSize + 4 + len(p.Blobs)*indexRecordSize
	}
	body := make([]byte, 0, n)
	body = binary.LittleEndian.AppendUint32(body, uint32(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		body = append(body, id[:]...)
	}
	body = binary.LittleEndian.AppendUint32(body, uint32(len(f.Packs)))
	for _, p := range f.Packs {
		body = append(body, p.ID[:]...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(p.Blobs)))
		for _, pb := range p.Blobs {
			var c byte
			if pb.Compressed {
				c = 1
			}
			body = append(body, byte(pb.Type), c, 0, 0)
			body = binary.LittleEndian.AppendUint32(body, pb.Offset)
			body = binary.LittleEndian.AppendUint32(body, pb.Length)
			body = binary.LittleEndian.AppendUint32(body, pb.PlainLength)
			body = append(body, pb.ID[:]...)
		}
	}
	out := []byte{indexVersion, 0, 0, 0}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return compress(out, body, false)
}

// decodeIndexFile decodes the plaintext of an index file.
func decodeIndexFile(plain []byte) (*IndexFile, error) {
	if len(plain) < indexPrefixSize {
		return nil, errors.New("index file too short")
	}
	if plain[0] > indexVersion {
		return nil, newerFormat("index file", int(plain[0]))
	}
	if plain[0] != indexVersion || plain[1] != 0 || plain[2] != 0 || plain[3] != 0 {
		return nil, fmt.Errorf("invalid index file version %d", plain[0])
	}
	bodyLen := binary.LittleEndian.Uint32(plain[4:])
	// Index bodies are mostly random ids and compress little; the bound
	// keeps a damaged length from allocating much.
	if bodyLen > maxIndexBodyLength || uint64(bodyLen) > 1000*uint64(len(plain))+1<<16 {
		return nil, fmt.Errorf("index body too long (%d bytes)", bodyLen)
	}
	body, err := decompress(nil, plain[indexPrefixSize:], int(bodyLen))
	if err != nil {
		return nil, err
	}
	return decodeIndexBody(body)
}

func decodeIndexBody(b []byte) (*IndexFile, error) {
	errShort := errors.New("index file truncated")
	u32 := func() (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return v, true
	}
	f := &IndexFile{}
	n, ok := u32()
	if !ok || uint64(n)*IDSize > uint64(len(b)) {
		return nil, errShort
	}
	for range n {
		var id ID
		copy(id[:], b)
		b = b[IDSize:]
		f.Supersedes = append(f.Supersedes, id)
	}
	np, ok := u32()
	if !ok || uint64(np)*(IDSize+4) > uint64(len(b)) {
		return nil, errShort
	}
	f.Packs = make([]IndexPack, 0, np)
	for i := range np {
		if len(b) < IDSize+4 {
			return nil, errShort
		}
		var p IndexPack
		copy(p.ID[:], b)
		b = b[IDSize:]
		nb, _ := u32()
		if uint64(nb)*indexRecordSize > uint64(len(b)) {
			return nil, errShort
		}
		p.Blobs = make([]PackedBlob, 0, nb)
		var end uint64
		for j := range nb {
			r := b[:indexRecordSize]
			b = b[indexRecordSize:]
			pb := PackedBlob{
				Type:        BlobType(r[0]),
				Pack:        p.ID,
				Offset:      binary.LittleEndian.Uint32(r[4:]),
				Length:      binary.LittleEndian.Uint32(r[8:]),
				PlainLength: binary.LittleEndian.Uint32(r[12:]),
				Compressed:  r[1] == 1,
			}
			copy(pb.ID[:], r[16:])
			if err := validRecord(r, pb); err != nil {
				return nil, fmt.Errorf("pack %d (%s) blob %d: %w", i, p.ID.Str(), j, err)
			}
			if uint64(pb.Offset) < end {
				return nil, fmt.Errorf("pack %d (%s) blob %d: overlaps the previous blob", i, p.ID.Str(), j)
			}
			end = uint64(pb.Offset) + uint64(pb.Length)
			if end > 1<<32-1 {
				return nil, fmt.Errorf("pack %d (%s) blob %d: beyond 4 GiB", i, p.ID.Str(), j)
			}
			p.Blobs = append(p.Blobs, pb)
		}
		f.Packs = append(f.Packs, p)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("index file has %d trailing bytes", len(b))
	}
	return f, nil
}

func validRecord(r []byte, pb PackedBlob) error {
	if r[0] > byte(TreeBlob) {
		return fmt.Errorf("invalid blob type %d", r[0])
	}
	if r[1] > 1 {
		return fmt.Errorf("invalid compression flag %d", r[1])
	}
	if r[2] != 0 || r[3] != 0 {
		return errors.New("reserved bytes are not zero")
	}
	if pb.Length < sealExtra {
		return fmt.Errorf("sealed length %d too short", pb.Length)
	}
	if !pb.Compressed && pb.PlainLength != pb.Length-sealExtra {
		return fmt.Errorf("uncompressed blob with plaintext length %d and sealed length %d", pb.PlainLength, pb.Length)
	}
	return nil
}

// SaveIndexFile seals and stores an index file and returns its id.
func (r *Repository) SaveIndexFile(ctx context.Context, f *IndexFile) (ID, error) {
	id, err := r.saveSealed(ctx, backend.IndexFile, encodeIndexFile(f))
	if err != nil {
		return ID{}, fmt.Errorf("save index: %w", err)
	}
	return id, nil
}

// LoadIndexFile loads and decodes one index file.
func (r *Repository) LoadIndexFile(ctx context.Context, id ID) (*IndexFile, error) {
	plain, err := r.loadSealed(ctx, backend.IndexFile, id)
	if err != nil {
		return nil, fmt.Errorf("load index %s: %w", id.Str(), err)
	}
	f, err := decodeIndexFile(plain)
	if err != nil {
		return nil, fmt.Errorf("load index %s: %w", id.Str(), err)
	}
	return f, nil
}

// ListFiles returns the ids of the files of type t whose names are ids;
// other names are skipped.
func (r *Repository) ListFiles(ctx context.Context, t backend.FileType) ([]ID, error) {
	var ids []ID
	err := r.be.List(ctx, t, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s files: %w", t, err)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids, nil
}

// loadIndex reads all index files into the in-memory index. An index file
// that cannot be loaded is recorded in r.indexErrs and skipped: its packs'
// blobs are missing from the index (a backup stores them again, check reports
// the damage).
func (r *Repository) loadIndex(ctx context.Context) error {
	ids, err := r.ListFiles(ctx, backend.IndexFile)
	if err != nil {
		return err
	}
	files := make([]*IndexFile, len(ids))
	errs := make([]error, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, id := range ids {
		g.Go(func() error {
			files[i], errs[i] = r.LoadIndexFile(gctx, id)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, err := range errs {
		// A newer index format means this version cannot know which blobs
		// exist; going on would make backups and prune misbehave.
		if errors.Is(err, ErrNewerFormat) {
			return err
		}
	}
	seen := make(map[ID]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	r.indexSeen = seen
	r.indexErrs, r.indexFiles = nil, nil
	superseded := make(map[ID]bool)
	for _, f := range files {
		if f != nil {
			for _, s := range f.Supersedes {
				superseded[s] = true
			}
		}
	}
	idx := newIndex()
	for i, f := range files {
		if errs[i] != nil {
			r.indexErrs = append(r.indexErrs, errs[i])
			continue
		}
		if superseded[ids[i]] {
			continue
		}
		for _, p := range f.Packs {
			idx.addPack(p)
		}
		r.indexFiles = append(r.indexFiles, ids[i])
	}
	r.idx = idx
	return nil
}

// ReloadIndex reloads the index when the set of index files differs
// from the one loaded (Lock calls it after taking the lock): another process wrote or removed index files
// (a backup finished, prune rewrote the index) between Open and taking the
// lock. Deduplicating against a stale index could reference packs prune has
// just deleted. Pending blobs of this process must have been flushed.
func (r *Repository) ReloadIndex(ctx context.Context) error {
	ids, err := r.ListFiles(ctx, backend.IndexFile)
	if err != nil {
		return err
	}
	same := len(ids) == len(r.indexSeen)
	for _, id := range ids {
		if !same {
			break
		}
		same = r.indexSeen[id]
	}
	if same {
		return nil
	}
	return r.loadIndex(ctx)
}

// IndexErrors returns the errors of index files that could not be loaded by
// Open. Their blobs are missing from the in-memory index.
func (r *Repository) IndexErrors() []error { return r.indexErrs }

// index is the compact in-memory index: per blob type a map from blob id to
// a 20-byte location; pack ids are stored once in a table.
type index struct {
	mu      sync.RWMutex
	packs   []ID
	packIdx map[ID]uint32
	blobs   [2]map[ID]location
	// dups holds further locations of blobs stored more than once (after a
	// crash, or concurrent backups); rare.
	dups []PackedBlob
}

type location struct {
	pack       uint32
	offset     uint32
	length     uint32
	plain      uint32
	compressed bool
}

func newIndex() *index {
	return &index{
		packIdx: make(map[ID]uint32),
		blobs:   [2]map[ID]location{make(map[ID]location), make(map[ID]location)},
	}
}

func (x *index) addPack(p IndexPack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	pi, ok := x.packIdx[p.ID]
	if !ok {
		pi = uint32(len(x.packs))
		x.packs = append(x.packs, p.ID)
		x.packIdx[p.ID] = pi
	}
	for _, pb := range p.Blobs {
		m := x.blobs[pb.Type&1]
		if old, ok := m[pb.ID]; ok {
			if old.pack == pi && old.offset == pb.Offset {
				continue // the same pack listed in two index files
			}
			pb.Pack = p.ID
			x.dups = append(x.dups, pb)
			continue
		}
		m[pb.ID] = location{pack: pi, offset: pb.Offset, length: pb.Length, plain: pb.PlainLength, compressed: pb.Compressed}
	}
}

func (x *index) has(t BlobType, id ID) bool {
	if t > TreeBlob {
		return false
	}
	x.mu.RLock()
	_, ok := x.blobs[t][id]
	x.mu.RUnlock()
	return ok
}

func (x *index) packed(t BlobType, id ID, l location) PackedBlob {
	return PackedBlob{Type: t, ID: id, Pack: x.packs[l.pack], Offset: l.offset, Length: l.length, PlainLength: l.plain, Compressed: l.compressed}
}

// lookup returns every known location of a blob.
func (x *index) lookup(t BlobType, id ID) []PackedBlob {
	if t > TreeBlob {
		return nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	l, ok := x.blobs[t][id]
	if !ok {
		return nil
	}
	out := []PackedBlob{x.packed(t, id, l)}
	for _, d := range x.dups {
		if d.Type == t && d.ID == id {
			out = append(out, d)
		}
	}
	return out
}

// LookupBlob returns every location of a blob known to the index.
func (r *Repository) LookupBlob(t BlobType, id ID) []PackedBlob { return r.idx.lookup(t, id) }

// EachBlob calls fn for every location of every blob in the index (a blob
// stored in two packs is reported twice). fn must not call methods that
// change the index (SaveBlob, Flush).
func (r *Repository) EachBlob(fn func(PackedBlob) error) error {
	x := r.idx
	x.mu.RLock()
	defer x.mu.RUnlock()
	for t := range x.blobs {
		for id, l := range x.blobs[t] {
			if err := fn(x.packed(BlobType(t), id, l)); err != nil {
				return err
			}
		}
	}
	for _, d := range x.dups {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// IndexedPacks returns the packs named by the in-memory index.
func (r *Repository) IndexedPacks() []ID {
	r.idx.mu.RLock()
	defer r.idx.mu.RUnlock()
	out := make([]ID, len(r.idx.packs))
	copy(out, r.idx.packs)
	return out
}

// BlobCount returns the number of distinct blobs of type t in the index.
func (r *Repository) BlobCount(t BlobType) int {
	if t > TreeBlob {
		return 0
	}
	r.idx.mu.RLock()
	defer r.idx.mu.RUnlock()
	return len(r.idx.blobs[t])
}
