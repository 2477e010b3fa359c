package repo

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// Pack and index flush targets. Variables so tests can make them small.
var (
	// PackSize is the size at which a pack is closed and written.
	PackSize = 16 << 20
	// indexFlushPacks and indexFlushInterval: while saving, an index file is
	// written for the packs stored so far after this many packs or this much
	// time, so an interrupted backup loses little and the next one finds
	// what was stored.
	indexFlushPacks    = 8
	indexFlushInterval = 30 * time.Second
)

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	be    backend.Backend
	cfg   Config
	key   *masterKey
	keyID ID
	kdf   KDFParams
	crypt *crypter

	idx        *index
	indexFiles []ID
	indexErrs  []error
	indexSeen  map[ID]bool // every index file listed when the index was loaded

	// lockLost holds the error of a lock this process lost (not renewed in
	// time, or removed by someone else); once set, the repository refuses
	// to save snapshots and to delete anything.
	lockLost atomic.Pointer[error]

	// Saving. pmu guards packers, inMemory, pending and saveErr; pcond (on
	// pmu) is signalled when the last writer of a pack finishes sealing and
	// when a pack has been written.
	pmu sync.Mutex
	// runCompression overrides the config's compression for this process
	// ("" = the config's); see UseCompression.
	runCompression string
	pcond          sync.Cond
	packers        [2]*packer
	inMemory       [2]int // packs of each type being filled, sealed or written
	pending        [2]map[ID]struct{}
	saveErr        error
	uploads        sync.WaitGroup

	// imu guards unindexed and lastIndex.
	imu       sync.Mutex
	unindexed []IndexPack
	lastIndex time.Time
}

// InitOptions configure a new repository. Zero values select defaults.
type InitOptions struct {
	KDF               KDFParams
	Hostname          string
	Username          string
	ChunkerPolynomial uint64 // 0 = random irreducible polynomial of degree 53
	FileChunker       ChunkerParams
	DiskChunker       ChunkerParams
	Compression       string // "auto" (default), "max" or "off"
	MinRetention      string // minimum retention period such as "30d"; "" for none
}

// Init creates a repository in be, protected by password. It fails with
// ErrAlreadyExists when be already holds a config.
func Init(ctx context.Context, be backend.Backend, password string, opts InitOptions) (*Repository, error) {
	_, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile})
	if err == nil {
		return nil, fmt.Errorf("init %s: %w", be.Location(), ErrAlreadyExists)
	}
	if !errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	cfg := Config{
		Version:           FormatVersion,
		ChunkerPolynomial: opts.ChunkerPolynomial,
		FileChunker:       opts.FileChunker,
		DiskChunker:       opts.DiskChunker,
		Compression:       opts.Compression,
		MinRetention:      opts.MinRetention,
	}
	var rid [32]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, err
	}
	cfg.ID = hex.EncodeToString(rid[:])
	if cfg.ChunkerPolynomial == 0 {
		if cfg.ChunkerPolynomial, err = RandomPolynomial(); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	} else if !polIrreducible(cfg.ChunkerPolynomial) {
		return nil, fmt.Errorf("init: chunker polynomial %x is not irreducible", cfg.ChunkerPolynomial)
	}
	if cfg.FileChunker == (ChunkerParams{}) {
		cfg.FileChunker = DefaultFileChunker
	}
	if cfg.DiskChunker == (ChunkerParams{}) {
		cfg.DiskChunker = DefaultDiskChunker
	}
	if cfg.Compression == "" {
		cfg.Compression = "auto"
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	mk, err := newMasterKey()
	if err != nil {
		return nil, err
	}
	r, err := newRepository(be, mk, cfg)
	if err != nil {
		return nil, err
	}
	r.kdf = opts.KDF
	// The key first, the config last: a config means a complete repository.
	if r.keyID, err = saveKey(ctx, be, mk, password, opts.KDF, opts.Hostname, opts.Username); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, r.crypt.seal(nil, plain)); err != nil {
		return nil, fmt.Errorf("init: save config: %w", err)
	}
	r.idx = newIndex()
	return r, nil
}

func newRepository(be backend.Backend, mk *masterKey, cfg Config) (*Repository, error) {
	c, err := newCrypter(mk)
	if err != nil {
		return nil, err
	}
	return &Repository{
		be: be, cfg: cfg, key: mk, crypt: c,
		pending:   [2]map[ID]struct{}{make(map[ID]struct{}), make(map[ID]struct{})},
		lastIndex: time.Now(),
		idx:       newIndex(),
	}, nil
}

// Open opens the repository in be with password and loads its index.
func Open(ctx context.Context, be backend.Backend, password string) (*Repository, error) {
	sealedCfg, err := be.Load(ctx, backend.Handle{Type: backend.ConfigFile}, 0, 0)
	if errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", be.Location(), ErrNoRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: load config: %w", be.Location(), err)
	}
	mk, keyID, err := openKey(ctx, be, password)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", be.Location(), err)
	}
	c, err := newCrypter(mk)
	if err != nil {
		return nil, err
	}
	plain, err := c.open(nil, sealedCfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: config: %w", be.Location(), err)
	}
	cfg, err := parseConfig(plain)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", be.Location(), err)
	}
	r, err := newRepository(be, mk, cfg)
	if err != nil {
		return nil, err
	}
	r.keyID = keyID
	if err := r.loadIndex(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", be.Location(), err)
	}
	return r, nil
}

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the backend of the repository.
func (r *Repository) Backend() backend.Backend { return r.be }

// KeyID returns the id of the key file that opened the repository.
func (r *Repository) KeyID() ID { return r.keyID }

// Close waits for pack uploads in flight. It does not flush: call Flush to
// store pending blobs.
func (r *Repository) Close() error {
	r.uploads.Wait()
	return nil
}

// BlobID returns the id of a blob with the plaintext data.
func (r *Repository) BlobID(data []byte) ID { return r.crypt.blobID(data) }

// HasBlob reports whether the blob is stored or being stored by this
// Repository.
func (r *Repository) HasBlob(t BlobType, id ID) bool {
	if r.idx.has(t, id) {
		return true
	}
	if t > TreeBlob {
		return false
	}
	r.pmu.Lock()
	_, ok := r.pending[t][id]
	r.pmu.Unlock()
	return ok
}

// saveSealed seals plain, stores it named by its hash and returns the id.
func (r *Repository) saveSealed(ctx context.Context, t backend.FileType, plain []byte) (ID, error) {
	sealed := r.crypt.seal(nil, plain)
	id := FileID(sealed)
	if err := r.be.Save(ctx, backend.Handle{Type: t, Name: id.String()}, sealed); err != nil {
		return ID{}, err
	}
	return id, nil
}

// loadSealed loads the file id of type t, checks that its content matches
// its name and opens the seal.
func (r *Repository) loadSealed(ctx context.Context, t backend.FileType, id ID) ([]byte, error) {
	sealed, err := r.be.Load(ctx, backend.Handle{Type: t, Name: id.String()}, 0, 0)
	if err != nil {
		return nil, err
	}
	if got := FileID(sealed); got != id {
		return nil, fmt.Errorf("content does not match the file name (hash %s): file is damaged", got.Str())
	}
	return r.crypt.open(nil, sealed)
}

// packer collects sealed blobs of one type until the pack is full.
//
// Callers reserve a region of buf under Repository.pmu and seal into it
// without the lock, so several goroutines encrypt into one pack at once.
// buf starts small and grows towards packCap only while no writer is
// active (a caller that needs more room waits for the writers); a blob that
// does not fit in packCap closes the pack. The last writer of a closed pack
// uploads it. Starting small keeps the memory of a pack proportional to
// what it holds: a backup's tree pack rarely fills.
//
// At most maxPacksInMemory packs of a type exist at a time: one being
// filled while the previous one is written. A caller that needs a new pack
// while both are busy waits for the write to finish. Without the bound,
// savers outpacing the backend pile up full packs in memory.
type packer struct {
	buf       []byte
	blobs     []PackedBlob
	writers   int  // goroutines sealing into buf
	closed    bool // no more blobs; upload when writers == 0
	uploading bool
}

// ready reports whether p must be uploaded now; pmu must be held.
func (p *packer) ready() bool { return p.closed && p.writers == 0 && !p.uploading }

// maxPacksInMemory bounds the packs of one type held in memory.
const maxPacksInMemory = 2

// waitPacks waits, with pmu held, until a pack is written or the last
// writer of a pack is done sealing.
func (r *Repository) waitPacks() {
	if r.pcond.L == nil {
		r.pcond.L = &r.pmu
	}
	r.pcond.Wait()
}

// packDone records, with pmu held, that a pack of type t left memory.
func (r *Repository) packDone(t BlobType) {
	r.inMemory[t]--
	if r.pcond.L != nil {
		r.pcond.Broadcast()
	}
}

// SaveBlob stores data as the blob id of type t unless the blob is already
// stored or being stored. id must be r.BlobID(data). Compression and
// encryption run in the caller's goroutine, straight into the pack buffer;
// a full pack is written by the caller that finished it, outside the packer
// lock. It returns whether the blob was added and its sealed size.
//
// A blob is durable (found by the next Open) only after the index file that
// lists it is written: by Flush, or by the periodic index flush.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, id ID, data []byte) (bool, int, error) {
	if t > TreeBlob {
		return false, 0, fmt.Errorf("save blob: invalid type %d", t)
	}
	if uint64(len(data)) > 1<<31 {
		return false, 0, fmt.Errorf("save %s blob %s: too large (%d bytes)", t, id.Str(), len(data))
	}
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if r.idx.has(t, id) {
		return false, 0, nil
	}
	r.pmu.Lock()
	if r.saveErr != nil {
		err := r.saveErr
		r.pmu.Unlock()
		return false, 0, err
	}
	if _, ok := r.pending[t][id]; ok || r.idx.has(t, id) {
		r.pmu.Unlock()
		return false, 0, nil
	}
	r.pending[t][id] = struct{}{}
	r.pmu.Unlock()

	payload, compressed := data, false
	if mode := r.compression(); mode != "off" && len(data) >= 64 {
		cp := bufPool.Get().(*[]byte)
		defer putBuf(cp)
		if c := len(data) + len(data)/64 + 64; cap(*cp) < c {
			// Room for the frame, so the encoder does not grow it in steps.
			*cp = make([]byte, 0, c)
		}
		*cp = compress((*cp)[:0], data, mode == "max")
		if pays(len(*cp), len(data)) {
			payload, compressed = *cp, true
		}
	}
	n := len(payload) + sealExtra

	r.pmu.Lock()
	var p *packer
	for p == nil {
		if r.saveErr != nil {
			err := r.saveErr
			delete(r.pending[t], id)
			r.pmu.Unlock()
			return false, 0, err
		}
		cur := r.packers[t]
		switch {
		case cur == nil && r.inMemory[t] >= maxPacksInMemory:
			// Both packs are being sealed or written by other callers.
			r.waitPacks()
		case cur == nil:
			p = &packer{buf: getPackBuf(t, n)}
			r.packers[t] = p
			r.inMemory[t]++
		case len(cur.buf)+n <= cap(cur.buf):
			p = cur
		case len(cur.buf)+n > packCap(n):
			// The blob does not fit: close the pack. Its last writer
			// writes it; when that is this caller, it writes it now,
			// before taking room in the next pack.
			cur.closed = true
			r.packers[t] = nil
			if cur.ready() {
				cur.uploading = true
				r.uploads.Add(1)
				r.pmu.Unlock()
				err := r.writePack(ctx, t, cur)
				r.uploads.Done()
				r.pmu.Lock()
				if err != nil {
					delete(r.pending[t], id)
					r.pmu.Unlock()
					return false, 0, err
				}
			}
		case cur.writers > 0:
			// Writers seal into buf: it cannot move until they are done.
			r.waitPacks()
		default:
			cur.buf = growPackBuf(cur.buf, n)
			p = cur
		}
	}
	off := len(p.buf)
	p.buf = p.buf[:off+n]
	region := p.buf[off : off : off+n]
	p.blobs = append(p.blobs, PackedBlob{Type: t, ID: id, Offset: uint32(off), Length: uint32(n), PlainLength: uint32(len(data)), Compressed: compressed})
	p.writers++
	if len(p.buf) >= PackSize {
		p.closed = true
		r.packers[t] = nil
	}
	r.pmu.Unlock()

	sealed := r.crypt.seal(region, payload)
	if dst := region[:n]; len(sealed) != n || &sealed[0] != &dst[0] {
		// seal appends in place when the capacity suffices, which it does;
		// this keeps the pack right should that ever change.
		copy(dst, sealed)
	}

	r.pmu.Lock()
	p.writers--
	if p.writers == 0 && r.pcond.L != nil {
		r.pcond.Broadcast()
	}
	upload := p.ready()
	if upload {
		p.uploading = true
		r.uploads.Add(1)
	}
	r.pmu.Unlock()

	if upload {
		err := r.writePack(ctx, t, p)
		r.uploads.Done()
		if err != nil {
			return true, n, err
		}
	}
	return true, n, nil
}

// bufPool holds buffers for compressed blobs; packBufs holds idle pack
// buffers. Reusing them saves allocating and clearing megabytes per blob.
// packBufs is a bounded free list rather than a sync.Pool: a sync.Pool is
// emptied by the garbage collector, and reallocating 16 MiB pack buffers
// after every collection leaves the process holding freed pages it does not
// reuse (the peak resident memory of a backup grew by a third).
var (
	bufPool  = sync.Pool{New: func() any { return new([]byte) }}
	packBufs = make(chan []byte, 2)
)

// maxPooledBuf is the largest buffer bufPool keeps. Most chunks are
// smaller; without the bound every pooled buffer would in time grow to the
// largest chunk (8 MiB), held once per goroutine saving or loading blobs.
const maxPooledBuf = 4 << 20

// putBuf returns a buffer taken from bufPool, dropping a large one.
func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		*b = nil
	}
	bufPool.Put(b)
}

// packCap is the largest capacity of a pack buffer for a blob of n sealed
// bytes: the target pack size plus room for the blob that crosses it.
func packCap(n int) int { return max(PackSize+PackSize/8, n) }

// minPackBuf is the capacity a new pack buffer starts with.
const minPackBuf = 1 << 20

// getPackBuf returns an empty pack buffer of type t that holds at least a
// blob of n bytes: a recycled one, or a new one that starts small and
// grows. Tree packs always start small: a backup's tree pack rarely fills.
func getPackBuf(t BlobType, n int) []byte {
	if t == DataBlob {
		select {
		case b := <-packBufs:
			if cap(b) >= n {
				return b[:0]
			}
		default:
		}
	}
	return make([]byte, 0, min(max(n, minPackBuf), packCap(n)))
}

// putPackBuf keeps a full-size pack buffer for reuse.
func putPackBuf(b []byte) {
	if cap(b) < PackSize {
		return
	}
	select {
	case packBufs <- b[:0]:
	default:
	}
}

// growPackBuf returns buf with room for n more bytes, doubling its
// capacity up to packCap.
func growPackBuf(buf []byte, n int) []byte {
	c := min(max(2*cap(buf), len(buf)+n), packCap(n))
	nb := make([]byte, len(buf), c)
	copy(nb, buf)
	return nb
}

// writePack finishes a pack, stores it and adds its blobs to the index.
func (r *Repository) writePack(ctx context.Context, t BlobType, p *packer) error {
	hdr := r.crypt.seal(nil, encodeHeaderRecords(p.blobs))
	p.buf = append(p.buf, hdr...)
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(hdr)))
	id := FileID(p.buf)
	err := r.be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, p.buf)
	if err != nil {
		err = fmt.Errorf("save %s pack %s: %w", t, id.Str(), err)
		r.pmu.Lock()
		if r.saveErr == nil {
			r.saveErr = err
		}
		for _, pb := range p.blobs {
			delete(r.pending[t], pb.ID)
		}
		p.buf = nil
		r.packDone(t)
		r.pmu.Unlock()
		return err
	}
	ip := IndexPack{ID: id, Blobs: p.blobs}
	for i := range ip.Blobs {
		ip.Blobs[i].Pack = id
	}
	putPackBuf(p.buf)
	p.buf = nil
	r.idx.addPack(ip)
	r.pmu.Lock()
	for _, pb := range p.blobs {
		delete(r.pending[t], pb.ID)
	}
	r.packDone(t)
	r.pmu.Unlock()

	r.imu.Lock()
	r.unindexed = append(r.unindexed, ip)
	var batch []IndexPack
	if len(r.unindexed) >= indexFlushPacks || time.Since(r.lastIndex) >= indexFlushInterval {
		batch = r.unindexed
		r.unindexed = nil
		r.lastIndex = time.Now()
	}
	r.imu.Unlock()
	if batch != nil {
		return r.writeIndex(ctx, batch)
	}
	return nil
}

func (r *Repository) writeIndex(ctx context.Context, packs []IndexPack) error {
	id, err := r.SaveIndexFile(ctx, &IndexFile{Packs: packs})
	if err != nil {
		r.imu.Lock()
		r.unindexed = append(r.unindexed, packs...)
		r.imu.Unlock()
		r.pmu.Lock()
		if r.saveErr == nil {
			r.saveErr = err
		}
		r.pmu.Unlock()
		return err
	}
	r.imu.Lock()
	r.indexFiles = append(r.indexFiles, id)
	r.imu.Unlock()
	return nil
}

// Flush writes the packs being filled and then an index file for every pack
// written since the last index file. Call it when all SaveBlob calls have
// returned and before SaveSnapshot. After a failed pack or index write,
// Flush returns that error: nothing saved since may be referenced.
func (r *Repository) Flush(ctx context.Context) error {
	r.pmu.Lock()
	if r.saveErr != nil {
		err := r.saveErr
		r.pmu.Unlock()
		return err
	}
	var toWrite []*packer
	for t, p := range r.packers {
		if p == nil {
			continue
		}
		r.packers[t] = nil
		p.closed = true
		switch {
		case p.ready() && len(p.blobs) > 0:
			p.uploading = true
			toWrite = append(toWrite, p)
			r.uploads.Add(1)
		case p.ready():
			r.packDone(BlobType(t))
		}
	}
	r.pmu.Unlock()
	var firstErr error
	for _, p := range toWrite {
		if err := r.writePack(ctx, p.blobs[0].Type, p); err != nil && firstErr == nil {
			firstErr = err
		}
		r.uploads.Done()
	}
	r.uploads.Wait()
	if firstErr != nil {
		return firstErr
	}
	r.pmu.Lock()
	err := r.saveErr
	r.pmu.Unlock()
	if err != nil {
		return err
	}
	r.imu.Lock()
	batch := r.unindexed
	r.unindexed = nil
	r.lastIndex = time.Now()
	r.imu.Unlock()
	if len(batch) > 0 {
		return r.writeIndex(ctx, batch)
	}
	return nil
}

// LoadBlob loads, decrypts, decompresses and verifies a blob, appending its
// plaintext to buf[:0]. Only blobs in written packs can be loaded. When a
// blob is stored more than once, every copy is tried. Errors are *BlobError
// naming the pack and blob.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	locs := r.idx.lookup(t, id)
	if len(locs) == 0 {
		return nil, &BlobError{Type: t, ID: id, Err: ErrBlobNotFound}
	}
	var firstErr error
	for _, pb := range locs {
		out, err := r.loadPacked(ctx, pb, buf)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// loaderInto is implemented by backends that can read into a caller's
// buffer (the local backend); LoadBlob then reads blobs into recycled
// buffers instead of allocating one per blob.
type loaderInto interface {
	LoadInto(ctx context.Context, h backend.Handle, offset int64, buf []byte) error
}

// loadPacked loads one stored copy of a blob.
func (r *Repository) loadPacked(ctx context.Context, pb PackedBlob, buf []byte) ([]byte, error) {
	h := backend.Handle{Type: backend.PackFile, Name: pb.Pack.String()}
	var sealed []byte
	var err error
	if li, ok := r.be.(loaderInto); ok && pb.Length > 0 {
		sp := bufPool.Get().(*[]byte)
		defer putBuf(sp)
		if cap(*sp) < int(pb.Length) {
			*sp = make([]byte, pb.Length)
		}
		sealed = (*sp)[:pb.Length]
		err = li.LoadInto(ctx, h, int64(pb.Offset), sealed)
	} else {
		sealed, err = r.be.Load(ctx, h, int64(pb.Offset), int64(pb.Length))
	}
	if err != nil {
		return nil, &BlobError{Type: pb.Type, ID: pb.ID, Pack: pb.Pack, Err: err}
	}
	out, err := r.OpenBlob(pb, sealed, buf)
	if err != nil {
		return nil, &BlobError{Type: pb.Type, ID: pb.ID, Pack: pb.Pack, Err: err}
	}
	return out, nil
}

// OpenBlob decrypts, decompresses and verifies the sealed bytes of the blob
// pb, appending the plaintext to buf[:0].
func (r *Repository) OpenBlob(pb PackedBlob, sealed, buf []byte) ([]byte, error) {
	if len(sealed) != int(pb.Length) {
		return nil, fmt.Errorf("sealed blob has %d bytes, want %d", len(sealed), pb.Length)
	}
	var out []byte
	var err error
	if pb.Compressed {
		cp := bufPool.Get().(*[]byte)
		defer putBuf(cp)
		*cp, err = r.crypt.open((*cp)[:0], sealed)
		if err != nil {
			return nil, err
		}
		out, err = decompress(buf[:0], *cp, int(pb.PlainLength))
	} else {
		out, err = r.crypt.open(buf[:0], sealed)
	}
	if err != nil {
		return nil, err
	}
	if len(out) != int(pb.PlainLength) {
		return nil, fmt.Errorf("plaintext has %d bytes, want %d", len(out), pb.PlainLength)
	}
	if got := r.crypt.blobID(out); got != pb.ID {
		return nil, fmt.Errorf("content hash %s does not match the blob id", got.Str())
	}
	return out, nil
}
