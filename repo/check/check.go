// Package check verifies a repository: that every file is intact and named
// by the hash of its content, that the index agrees with the pack headers,
// that every blob a snapshot references is indexed, and (with ReadData) that
// every stored blob decrypts and matches its id. Problems are collected in a
// Result; damaged or missing blobs are traced back to the snapshots, file
// paths and disks that use them. Files no snapshot depends on (history
// files, temporary files left by killed writers) are checked too, and
// problems with them are warnings.
package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"golang.org/x/sync/errgroup"
)

// Severity tells errors (data is damaged or missing) from warnings (harmless
// leftovers such as unreferenced packs).
type Severity string

// The severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Kind classifies a problem.
type Kind string

// The kinds of problems.
const (
	FileNameMismatch  Kind = "file_name_mismatch"  // content hash differs from the file name
	FileDamaged       Kind = "file_damaged"        // a file cannot be read or decoded
	UnknownFile       Kind = "unknown_file"        // a file whose name is not an id
	IndexDamaged      Kind = "index_damaged"       // an index file cannot be loaded
	MissingPack       Kind = "missing_pack"        // the index names a pack that does not exist
	UnreferencedPack  Kind = "unreferenced_pack"   // a pack no index names
	HeaderMismatch    Kind = "header_mismatch"     // pack header and index disagree
	PackDamaged       Kind = "pack_damaged"        // a pack's header or content is damaged
	BlobDamaged       Kind = "blob_damaged"        // a blob does not decrypt or match its id
	BlobMissing       Kind = "blob_missing"        // a referenced blob is not in the index
	TreeDamaged       Kind = "tree_damaged"        // a tree or chunk list cannot be decoded
	SnapshotDamaged   Kind = "snapshot_damaged"    // a snapshot file cannot be loaded
	DuplicateBlob     Kind = "duplicate_blob"      // a blob is stored in more than one pack
	MissingIndexEntry Kind = "missing_index_entry" // a pack header lists a blob the index lacks
)

// Problem is one finding.
type Problem struct {
	Severity Severity  `json:"severity"`
	Kind     Kind      `json:"kind"`
	File     string    `json:"file,omitempty"` // e.g. "data/ab/ab12…", "snapshots/…"
	Pack     *repo.ID  `json:"pack,omitempty"`
	Blobs    []repo.ID `json:"blobs,omitempty"`
	Message  string    `json:"message"`
}

func (p Problem) String() string {
	return string(p.Severity) + ": " + p.Message
}

// Use is a place in a snapshot that needs a damaged or missing blob.
type Use struct {
	Snapshot repo.ID   `json:"snapshot"`
	Path     string    `json:"path"` // a file path, or the disk described in prose
	Blobs    []repo.ID `json:"blobs"`
	// File is the file's path; Disk, Offset (of the first damaged chunk)
	// and DamagedChunks locate damage in a disk.
	File          string  `json:"file,omitempty"`
	Disk          string  `json:"disk,omitempty"`
	Offset        *uint64 `json:"offset,omitempty"`
	DamagedChunks int     `json:"damaged_chunks,omitempty"`
}

// Result is the outcome of a check.
type Result struct {
	Problems []Problem `json:"problems"`
	// Affected lists the snapshot files and disks that use damaged or
	// missing blobs.
	Affected []Use `json:"affected"`

	Snapshots int   `json:"snapshots"`
	Packs     int   `json:"packs"`
	Blobs     int   `json:"blobs"`
	PacksRead int   `json:"packs_read"`
	BytesRead int64 `json:"bytes_read"`

	mu sync.Mutex
}

// Errors returns the number of error problems.
func (r *Result) Errors() int { return r.count(Error) }

// Warnings returns the number of warnings.
func (r *Result) Warnings() int { return r.count(Warning) }

// OK reports whether no errors were found.
func (r *Result) OK() bool { return r.Errors() == 0 }

func (r *Result) count(s Severity) int {
	n := 0
	for _, p := range r.Problems {
		if p.Severity == s {
			n++
		}
	}
	return n
}

func (r *Result) add(p Problem) {
	r.mu.Lock()
	r.Problems = append(r.Problems, p)
	r.mu.Unlock()
}

// Progress receives progress reports; nil means none.
type Progress = repo.Progress

// Options select what is checked.
type Options struct {
	// ReadData reads every pack and verifies every blob.
	ReadData bool
	// ReadDataSubset reads a subset of packs: "n/m" (the n-th of m groups
	// of packs, by pack id) or "P%" (a random P percent of packs).
	// It is ignored when ReadData is set.
	ReadDataSubset string
	Progress       Progress
}

// Subset is a parsed ReadDataSubset.
type Subset struct {
	N, M    uint32  // group N of M (1-based), when M > 0
	Percent float64 // percentage, when M == 0
}

// ParseSubset parses "n/m" or "P%".
func ParseSubset(s string) (Subset, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return Subset{}, fmt.Errorf("invalid subset %q: want a percentage in (0, 100]", s)
		}
		return Subset{Percent: f}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	n, err1 := strconv.ParseUint(a, 10, 32)
	m, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || m == 0 || n == 0 || n > m {
		return Subset{}, fmt.Errorf("invalid subset %q: want n/m with 1 <= n <= m, or P%%", s)
	}
	return Subset{N: uint32(n), M: uint32(m)}, nil
}

// select returns the packs of the subset.
func (s Subset) choose(packs []repo.ID) []repo.ID {
	var out []repo.ID
	if s.M > 0 {
		for _, p := range packs {
			g := (uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3])) % s.M
			if g == s.N-1 {
				out = append(out, p)
			}
		}
		return out
	}
	n := int(float64(len(packs))*s.Percent/100 + 0.999999)
	n = min(n, len(packs))
	perm := rand.Perm(len(packs))
	for _, i := range perm[:n] {
		out = append(out, packs[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func packFile(id repo.ID) string {
	return backend.Handle{Type: backend.PackFile, Name: id.String()}.Path()
}

type checker struct {
	r    *repo.Repository
	be   backend.Backend
	opts Options
	res  *Result
	// snapshots are the snapshot files listed before the index was loaded.
	snapshots []repo.ID
	prog      Progress

	// index view: pack -> blobs the index places in it
	byPack map[repo.ID][]repo.PackedBlob
	// bad holds blobs found damaged; missing blobs are reported separately.
	bad map[repo.BlobType]map[repo.ID]bool
}

// Check verifies the repository. It returns an error only when the check
// itself cannot run (listing fails, ctx is cancelled); damage is reported in
// the Result.
func Check(ctx context.Context, r *repo.Repository, opts Options) (*Result, error) {
	c := &checker{
		r: r, be: r.Backend(), opts: opts, res: &Result{}, prog: opts.Progress,
		byPack: make(map[repo.ID][]repo.PackedBlob),
		bad:    map[repo.BlobType]map[repo.ID]bool{repo.DataBlob: {}, repo.TreeBlob: {}},
	}
	if c.prog == nil {
		c.prog = repo.NoProgress{}
	}
	var subset *Subset
	if !opts.ReadData && opts.ReadDataSubset != "" {
		s, err := ParseSubset(opts.ReadDataSubset)
		if err != nil {
			return nil, err
		}
		subset = &s
	}
	// Snapshots are listed before the index is (re)loaded: a snapshot is
	// saved only after the index naming its blobs, so every snapshot
	// listed here has its blobs in the index loaded next, even while a
	// backup runs alongside.
	snaps, err := r.ListFiles(ctx, backend.SnapshotFile)
	if err != nil {
		return nil, err
	}
	c.snapshots = snaps
	if err := r.ReloadIndex(ctx); err != nil {
		return nil, err
	}
	for _, t := range []backend.FileType{backend.KeyFile, backend.IndexFile, backend.SnapshotFile, backend.LockFile, backend.ProtectFile} {
		if err := c.checkFileNames(ctx, t); err != nil {
			return nil, err
		}
	}
	for _, err := range r.IndexErrors() {
		c.res.add(Problem{Severity: Error, Kind: IndexDamaged, Message: err.Error()})
	}
	packs, err := c.checkPacks(ctx)
	if err != nil {
		return nil, err
	}
	if opts.ReadData || subset != nil {
		toRead := packs
		if subset != nil {
			toRead = subset.choose(packs)
		}
		if err := c.readData(ctx, toRead); err != nil {
			return nil, err
		}
	}
	if err := c.checkSnapshots(ctx); err != nil {
		return nil, err
	}
	if err := c.checkProtections(ctx); err != nil {
		return nil, err
	}
	if err := c.checkHistory(ctx); err != nil {
		return nil, err
	}
	if err := c.checkTemp(ctx, time.Now()); err != nil {
		return nil, err
	}
	sort.SliceStable(c.res.Problems, func(i, j int) bool {
		a, b := c.res.Problems[i], c.res.Problems[j]
		if a.Severity != b.Severity {
			return a.Severity == Error
		}
		return false
	})
	return c.res, nil
}

// checkFileNames loads every file of type t and checks that its content
// hashes to its name.
func (c *checker) checkFileNames(ctx context.Context, t backend.FileType) error {
	var names []string
	err := c.be.List(ctx, t, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s files: %w", t, err)
	}
	c.prog.Phase("check "+t.Dir(), len(names))
	for _, n := range names {
		file := backend.Handle{Type: t, Name: n}.Path()
		id, err := repo.ParseID(n)
		if err != nil {
			c.res.add(Problem{Severity: Warning, Kind: UnknownFile, File: file, Message: fmt.Sprintf("%s: unknown file (name is not an id)", file)})
			c.prog.Done(1)
			continue
		}
		data, err := c.be.Load(ctx, backend.Handle{Type: t, Name: n}, 0, 0)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if t == backend.LockFile && errors.Is(err, backend.ErrNotExist) {
				c.prog.Done(1)
				continue // a lock removed meanwhile
			}
			c.res.add(Problem{Severity: Error, Kind: FileDamaged, File: file, Message: fmt.Sprintf("%s: %v", file, err)})
			c.prog.Done(1)
			continue
		}
		if got := repo.FileID(data); got != id {
			c.res.add(Problem{Severity: Error, Kind: FileNameMismatch, File: file,
				Message: fmt.Sprintf("%s: content hash %s does not match the name: the file is damaged", file, got.Str())})
		}
		c.prog.Done(1)
	}
	return nil
}

// checkPacks compares the packs in the backend with the index and the pack
// headers with the index. It returns the packs that exist.
func (c *checker) checkPacks(ctx context.Context) ([]repo.ID, error) {
	_ = c.r.EachBlob(func(pb repo.PackedBlob) error {
		c.byPack[pb.Pack] = append(c.byPack[pb.Pack], pb)
		return nil
	})
	c.res.Blobs = c.r.BlobCount(repo.DataBlob) + c.r.BlobCount(repo.TreeBlob)
	listed := make(map[repo.ID]int64)
	err := c.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, err := repo.ParseID(fi.Name)
		if err != nil {
			c.res.add(Problem{Severity: Warning, Kind: UnknownFile, File: "data/" + fi.Name,
				Message: fmt.Sprintf("data/%s: unknown file (name is not an id)", fi.Name)})
			return nil
		}
		listed[id] = fi.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	c.res.Packs = len(listed)
	var ids []repo.ID
	for id := range c.byPack {
		if _, ok := listed[id]; !ok {
			blobs := blobIDs(c.byPack[id])
			c.res.add(Problem{Severity: Error, Kind: MissingPack, File: packFile(id), Pack: ptr(id), Blobs: blobs,
				Message: fmt.Sprintf("pack %s is in the index but does not exist (%d blobs lost)", id.Str(), len(blobs))})
			for _, pb := range c.byPack[id] {
				c.bad[pb.Type][pb.ID] = true
			}
		}
	}
	for id := range listed {
		ids = append(ids, id)
		if _, ok := c.byPack[id]; !ok {
			c.res.add(Problem{Severity: Warning, Kind: UnreferencedPack, File: packFile(id), Pack: ptr(id),
				Message: fmt.Sprintf("pack %s is not in any index (left by an interrupted backup or prune; harmless, removed by prune)", id.Str())})
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })

	var indexed []repo.ID
	for _, id := range ids {
		if _, ok := c.byPack[id]; ok {
			indexed = append(indexed, id)
		}
	}
	c.prog.Phase("check pack headers", len(indexed))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, id := range indexed {
		g.Go(func() error {
			defer c.prog.Done(1)
			hdr, err := c.r.LoadPackHeader(gctx, id)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				c.res.add(Problem{Severity: Error, Kind: PackDamaged, File: packFile(id), Pack: ptr(id),
					Message: fmt.Sprintf("pack %s: %v", id.Str(), err)})
				return nil
			}
			c.compareHeader(id, hdr)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Blobs stored twice are harmless but worth knowing.
	seen := map[repo.BlobType]map[repo.ID]repo.ID{repo.DataBlob: {}, repo.TreeBlob: {}}
	for _, id := range indexed {
		for _, pb := range c.byPack[id] {
			if other, ok := seen[pb.Type][pb.ID]; ok && other != id {
				c.res.add(Problem{Severity: Warning, Kind: DuplicateBlob, Pack: ptr(id), Blobs: []repo.ID{pb.ID},
					Message: fmt.Sprintf("%s blob %s is stored in packs %s and %s", pb.Type, pb.ID.Str(), other.Str(), id.Str())})
			}
			seen[pb.Type][pb.ID] = id
		}
	}
	return ids, nil
}

func (c *checker) compareHeader(pack repo.ID, hdr []repo.PackedBlob) {
	inHeader := make(map[repo.PackedBlob]bool, len(hdr))
	for _, pb := range hdr {
		inHeader[pb] = true
	}
	inIndex := make(map[repo.PackedBlob]bool)
	for _, pb := range c.byPack[pack] {
		inIndex[pb] = true
		if !inHeader[pb] {
			c.res.add(Problem{Severity: Error, Kind: HeaderMismatch, File: packFile(pack), Pack: ptr(pack), Blobs: []repo.ID{pb.ID},
				Message: fmt.Sprintf("pack %s: index entry for %s blob %s (offset %d, length %d) is not in the pack header", pack.Str(), pb.Type, pb.ID.Str(), pb.Offset, pb.Length)})
		}
	}
	for _, pb := range hdr {
		if !inIndex[pb] && len(c.r.LookupBlob(pb.Type, pb.ID)) == 0 {
			c.res.add(Problem{Severity: Warning, Kind: MissingIndexEntry, File: packFile(pack), Pack: ptr(pack), Blobs: []repo.ID{pb.ID},
				Message: fmt.Sprintf("pack %s: %s blob %s is in the pack header but not in the index", pack.Str(), pb.Type, pb.ID.Str())})
		}
	}
}

// readData loads whole packs and verifies the pack hash and every indexed
// blob.
func (c *checker) readData(ctx context.Context, packs []repo.ID) error {
	c.prog.Phase("read data", len(packs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, id := range packs {
		g.Go(func() error {
			defer c.prog.Done(1)
			return c.readPack(gctx, id)
		})
	}
	return g.Wait()
}

func (c *checker) readPack(ctx context.Context, id repo.ID) error {
	data, err := c.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, 0, 0)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.res.add(Problem{Severity: Error, Kind: PackDamaged, File: packFile(id), Pack: ptr(id), Message: fmt.Sprintf("pack %s: %v", id.Str(), err)})
		return nil
	}
	c.res.mu.Lock()
	c.res.PacksRead++
	c.res.BytesRead += int64(len(data))
	c.res.mu.Unlock()
	if got := repo.FileID(data); got != id {
		c.res.add(Problem{Severity: Error, Kind: PackDamaged, File: packFile(id), Pack: ptr(id),
			Message: fmt.Sprintf("pack %s: content hash %s does not match the name: the pack is damaged", id.Str(), got.Str())})
	}
	var damaged []repo.ID
	var msgs []string
	var buf []byte
	for _, pb := range c.byPack[id] {
		end := int64(pb.Offset) + int64(pb.Length)
		if end > int64(len(data)) {
			damaged = append(damaged, pb.ID)
			msgs = append(msgs, fmt.Sprintf("%s blob %s: beyond the end of the pack", pb.Type, pb.ID.Str()))
			c.markBad(pb)
			continue
		}
		out, err := c.r.OpenBlob(pb, data[pb.Offset:end], buf)
		if err != nil {
			damaged = append(damaged, pb.ID)
			msgs = append(msgs, fmt.Sprintf("%s blob %s: %v", pb.Type, pb.ID.Str(), err))
			c.markBad(pb)
			continue
		}
		buf = out
	}
	if len(damaged) > 0 {
		c.res.add(Problem{Severity: Error, Kind: BlobDamaged, File: packFile(id), Pack: ptr(id), Blobs: damaged,
			Message: fmt.Sprintf("pack %s: %d damaged blob%s: %s", id.Str(), len(damaged), plural(len(damaged)), strings.Join(msgs, "; "))})
	}
	return nil
}

func (c *checker) markBad(pb repo.PackedBlob) {
	c.res.mu.Lock()
	defer c.res.mu.Unlock()
	// A blob is only lost when no other copy is intact; copies in other
	// packs are not tracked separately here, so any damaged copy counts
	// unless another location exists.
	if len(c.r.LookupBlob(pb.Type, pb.ID)) > 1 {
		return
	}
	c.bad[pb.Type][pb.ID] = true
}

func blobIDs(pbs []repo.PackedBlob) []repo.ID {
	out := make([]repo.ID, 0, len(pbs))
	for _, pb := range pbs {
		out = append(out, pb.ID)
	}
	return out
}

func ptr(id repo.ID) *repo.ID { return &id }
