package prune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/dustin/go-humanize"
	"golang.org/x/sync/errgroup"
)

// Limit is the unused data tolerated after prune: a percentage of the
// repository's size, a number of bytes, or unlimited.
type Limit struct {
	Percent   float64
	Bytes     int64
	Unlimited bool
}

// DefaultMaxUnused is 5% of the repository.
var DefaultMaxUnused = Limit{Percent: 5}

// ParseLimit parses "5%", "500M", "2GiB", "0" or "unlimited".
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "unlimited":
		return Limit{Unlimited: true}, nil
	case strings.HasSuffix(s, "%"):
		p, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || p < 0 || p >= 100 || math.IsNaN(p) {
			return Limit{}, fmt.Errorf("parse max-unused %q: want a percentage from 0 to below 100", s)
		}
		return Limit{Percent: p}, nil
	}
	b, err := humanize.ParseBytes(s)
	if err != nil || b > math.MaxInt64 {
		return Limit{}, fmt.Errorf("parse max-unused %q: want a percentage (5%%), a size (500M) or unlimited", s)
	}
	return Limit{Bytes: int64(b)}, nil
}

func (l Limit) String() string {
	switch {
	case l.Unlimited:
		return "unlimited"
	case l.Bytes > 0:
		return humanize.IBytes(uint64(l.Bytes))
	}
	return strconv.FormatFloat(l.Percent, 'f', -1, 64) + "%"
}

// allowed returns the unused bytes tolerated when used bytes are used and
// unused bytes stay: a percentage is of the repository after prune.
func (l Limit) allowed(used, unused int64) int64 {
	switch {
	case l.Unlimited:
		return math.MaxInt64
	case l.Bytes > 0:
		return l.Bytes
	}
	return int64(l.Percent / 100 * float64(used+unused))
}

// Progress receives progress reports; nil means none.
type Progress = repo.Progress

// Options configure prune.
type Options struct {
	// MaxUnused is the unused data tolerated in packs that are kept; the
	// zero Limit repacks every partly used pack.
	MaxUnused Limit
	Progress  Progress
	// Now is the current time, for the age of temporary files (zero =
	// time.Now()).
	Now time.Time
}

// Action is what the plan does with a pack.
type Action string

// The actions.
const (
	Keep   Action = "keep"
	Repack Action = "repack"
	Delete Action = "delete"
)

// Pack is one pack in the plan.
type Pack struct {
	ID          repo.ID       `json:"id"`
	Type        repo.BlobType `json:"-"`
	Size        int64         `json:"size"`
	Blobs       int           `json:"blobs"`
	UsedBlobs   int           `json:"used_blobs"`
	UsedBytes   int64         `json:"used_bytes"`   // sealed bytes of used blobs
	UnusedBytes int64         `json:"unused_bytes"` // sealed bytes of unused blobs
	Action      Action        `json:"action"`
	Unindexed   bool          `json:"unindexed,omitempty"` // in the backend but in no index file
}

// Plan is what prune will do. Its figures are for reports and --dry-run;
// Execute carries it out.
type Plan struct {
	Snapshots   int   `json:"snapshots"`
	UsedBlobs   int   `json:"used_blobs"`
	UsedBytes   int64 `json:"used_bytes"`
	UnusedBlobs int   `json:"unused_blobs"`
	UnusedBytes int64 `json:"unused_bytes"`
	// DuplicateBlobs counts used blobs stored in more than one pack; one
	// copy is kept.
	DuplicateBlobs int `json:"duplicate_blobs"`
	// RepositorySize is the size of all packs before prune.
	RepositorySize int64 `json:"repository_size"`

	Delete    []Pack `json:"delete"`     // packs without a used blob, unindexed packs included
	Repack    []Pack `json:"repack"`     // partly used packs whose used blobs are copied
	KeepPacks int    `json:"keep_packs"` // packs kept as they are
	// MissingPacks are indexed but absent from the backend and hold no
	// used blob; the new index drops them.
	MissingPacks []repo.ID `json:"missing_packs,omitempty"`

	BytesFreed   int64 `json:"bytes_freed"`   // pack bytes removed minus bytes rewritten
	BytesRewrite int64 `json:"bytes_rewrite"` // sealed bytes copied into new packs
	UnusedAfter  int64 `json:"unused_after"`  // unused bytes left in kept packs
	MaxUnused    Limit `json:"-"`

	// HistoryFiles is the number of history files; above HistoryCompactAt
	// they are merged into one (CompactHistory).
	HistoryFiles   int  `json:"history_files"`
	CompactHistory bool `json:"compact_history"`
	// TempFiles and TempBytes are the temporary files older than
	// backend.StaleTempAge that killed writers left behind; they are
	// removed.
	TempFiles int   `json:"temp_files"`
	TempBytes int64 `json:"temp_bytes"`

	r            *repo.Repository
	prog         Progress
	byPack       map[repo.ID][]repo.PackedBlob
	keepPacks    []repo.ID
	copyFrom     map[repo.ID][]repo.PackedBlob // repacked pack -> blobs to copy
	indexFiles   []repo.ID                     // every index file, superseded by the new index
	historyFiles []repo.ID                     // history files to merge
	temps        []backend.TempFile            // temporary files to remove
	noOp         bool                          // no pack to delete or repack, nothing to drop from the index
	executed     bool
	executeLock  sync.Mutex
}

// Empty reports whether there is nothing to do.
func (p *Plan) Empty() bool { return p.noOp && !p.CompactHistory && len(p.temps) == 0 }

type blobKey struct {
	t  repo.BlobType
	id repo.ID
}

// NewPlan computes the prune plan for r. It reads every snapshot, tree and
// chunk list; it fails, and nothing may be pruned, when a snapshot or a
// blob a snapshot references cannot be read or is not indexed, or when an
// index file is damaged (its packs would look unused).
func NewPlan(ctx context.Context, r *repo.Repository, opts Options) (*Plan, error) {
	prog := opts.Progress
	if prog == nil {
		prog = repo.NoProgress{}
	}
	if errs := r.IndexErrors(); len(errs) > 0 {
		return nil, fmt.Errorf("plan prune: index is damaged (%v); run check and repair it first", errs[0])
	}
	sns, errs, err := r.SnapshotsWithErrors(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan prune: %w", err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("plan prune: a snapshot cannot be read, so the data it uses is unknown: %w", errs[0])
	}
	used, err := findUsed(ctx, r, sns, prog)
	if err != nil {
		return nil, fmt.Errorf("plan prune: %w", err)
	}
	indexFiles, err := r.ListFiles(ctx, backend.IndexFile)
	if err != nil {
		return nil, fmt.Errorf("plan prune: %w", err)
	}
	sizes, err := r.ListPacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan prune: %w", err)
	}
	p := &Plan{
		Snapshots: len(sns), MaxUnused: opts.MaxUnused, r: r, prog: prog,
		byPack: make(map[repo.ID][]repo.PackedBlob), copyFrom: make(map[repo.ID][]repo.PackedBlob),
		indexFiles: indexFiles,
	}
	// chosen holds, for each used blob, the pack whose copy is kept. Most
	// blobs are stored once; more lists every pack of those stored more
	// often, to choose among them below.
	chosen := make(map[blobKey]repo.ID, len(used))
	more := make(map[blobKey][]repo.ID)
	_ = r.EachBlob(func(pb repo.PackedBlob) error {
		p.byPack[pb.Pack] = append(p.byPack[pb.Pack], pb)
		k := blobKey{pb.Type, pb.ID}
		if _, ok := used[k]; !ok {
			return nil
		}
		if first, ok := chosen[k]; !ok {
			chosen[k] = pb.Pack
		} else {
			if more[k] == nil {
				more[k] = []repo.ID{first}
			}
			more[k] = append(more[k], pb.Pack)
		}
		return nil
	})
	for _, s := range sizes {
		p.RepositorySize += s
	}

	// Every used blob must be stored in an existing pack.
	for k := range used {
		pk, ok := chosen[k]
		if ok {
			if _, exists := sizes[pk]; exists {
				continue
			}
		}
		found := false
		for _, pk := range more[k] {
			if _, exists := sizes[pk]; exists {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("plan prune: %s blob %s is used by a snapshot but not stored in any existing pack; run check", k.t, k.id.Str())
		}
	}

	// Of a blob stored several times, keep the copy in the pack holding the
	// most used bytes, so that duplicates end up in packs kept anyway.
	if len(more) > 0 {
		usedIn := make(map[repo.ID]int64)
		for pk, blobs := range p.byPack {
			for _, pb := range blobs {
				if _, ok := used[blobKey{pb.Type, pb.ID}]; ok {
					usedIn[pk] += int64(pb.Length)
				}
			}
		}
		for k, packs := range more {
			best := repo.ID{}
			for _, pk := range packs {
				if _, ok := sizes[pk]; !ok {
					continue
				}
				if best.IsNull() || usedIn[pk] > usedIn[best] || usedIn[pk] == usedIn[best] && pk.String() < best.String() {
					best = pk
				}
			}
			chosen[k] = best
			p.DuplicateBlobs++
		}
	}

	var candidates []Pack
	taken := make(map[blobKey]bool, len(more))
	packIDs := make([]repo.ID, 0, len(p.byPack))
	for id := range p.byPack {
		packIDs = append(packIDs, id)
	}
	sort.Slice(packIDs, func(i, j int) bool { return packIDs[i].String() < packIDs[j].String() })
	for _, id := range packIDs {
		blobs := p.byPack[id]
		size, exists := sizes[id]
		pk := Pack{ID: id, Type: blobs[0].Type, Size: size, Blobs: len(blobs)}
		var toCopy []repo.PackedBlob
		for _, pb := range blobs {
			k := blobKey{pb.Type, pb.ID}
			if chosen[k] == id && !taken[k] {
				if _, dup := more[k]; dup {
					taken[k] = true // a blob twice in one pack is copied once
				}
				pk.UsedBlobs++
				pk.UsedBytes += int64(pb.Length)
				toCopy = append(toCopy, pb)
			} else {
				pk.UnusedBytes += int64(pb.Length)
			}
		}
		p.UsedBlobs += pk.UsedBlobs
		p.UsedBytes += pk.UsedBytes
		p.UnusedBlobs += pk.Blobs - pk.UsedBlobs
		p.UnusedBytes += pk.UnusedBytes
		switch {
		case !exists:
			p.MissingPacks = append(p.MissingPacks, id)
		case pk.UsedBlobs == 0:
			pk.Action = Delete
			p.Delete = append(p.Delete, pk)
		case pk.UsedBlobs == pk.Blobs:
			pk.Action = Keep
			p.keepPacks = append(p.keepPacks, id)
		default:
			p.copyFrom[id] = toCopy
			candidates = append(candidates, pk)
		}
	}
	for id, size := range sizes {
		if _, ok := p.byPack[id]; !ok {
			p.Delete = append(p.Delete, Pack{ID: id, Size: size, Action: Delete, Unindexed: true})
		}
	}
	sort.Slice(p.Delete, func(i, j int) bool { return p.Delete[i].ID.String() < p.Delete[j].ID.String() })

	// Repack the most wasteful packs until the unused data left is within
	// the limit.
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		ra := float64(a.UnusedBytes) / float64(a.UsedBytes+a.UnusedBytes)
		rb := float64(b.UnusedBytes) / float64(b.UsedBytes+b.UnusedBytes)
		if ra != rb {
			return ra > rb
		}
		if a.UnusedBytes != b.UnusedBytes {
			return a.UnusedBytes > b.UnusedBytes
		}
		return a.ID.String() < b.ID.String()
	})
	var unusedAfter int64
	for _, c := range candidates {
		unusedAfter += c.UnusedBytes
	}
	for _, c := range candidates {
		if unusedAfter > opts.MaxUnused.allowed(p.UsedBytes, unusedAfter) {
			c.Action = Repack
			p.Repack = append(p.Repack, c)
			unusedAfter -= c.UnusedBytes
			p.BytesRewrite += c.UsedBytes
			continue
		}
		c.Action = Keep
		p.keepPacks = append(p.keepPacks, c.ID)
		delete(p.copyFrom, c.ID)
	}
	p.UnusedAfter = unusedAfter
	p.KeepPacks = len(p.keepPacks)
	var removed int64
	for _, d := range p.Delete {
		removed += d.Size
	}
	for _, c := range p.Repack {
		removed += c.Size
	}
	p.BytesFreed = removed - p.BytesRewrite
	// Nothing to do when no pack goes and the index has nothing to drop.
	p.noOp = len(p.Delete) == 0 && len(p.Repack) == 0 && len(p.MissingPacks) == 0
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := p.planHousekeeping(ctx, now); err != nil {
		return nil, fmt.Errorf("plan prune: %w", err)
	}
	return p, nil
}

// findUsed returns every blob the snapshots reference: their trees and the
// data blobs of files, their disks' chunk lists and the chunks they list.
func findUsed(ctx context.Context, r *repo.Repository, sns []*repo.Snapshot, prog Progress) (map[blobKey]struct{}, error) {
	used := make(map[blobKey]struct{})
	var mu sync.Mutex
	add := func(t repo.BlobType, id repo.ID) bool {
		mu.Lock()
		defer mu.Unlock()
		k := blobKey{t, id}
		if _, ok := used[k]; ok {
			return false
		}
		used[k] = struct{}{}
		return true
	}
	var trees, lists []repo.ID
	for _, sn := range sns {
		if sn.Tree != nil && add(repo.TreeBlob, *sn.Tree) {
			trees = append(trees, *sn.Tree)
		}
		for _, d := range sn.Disks {
			for _, id := range d.ChunkLists {
				if add(repo.TreeBlob, id) {
					lists = append(lists, id)
				}
			}
		}
	}
	prog.Phase("find used data", len(sns))
	// Trees level by level, loaded in parallel.
	for len(trees) > 0 {
		next := make([][]repo.ID, len(trees))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for i, id := range trees {
			g.Go(func() error {
				t, err := r.LoadTree(gctx, id)
				if err != nil {
					return fmt.Errorf("load tree %s: %w; run check", id.Str(), err)
				}
				for _, n := range t.Nodes {
					for _, c := range n.Content {
						if c.ID != nil {
							add(repo.DataBlob, *c.ID)
						}
					}
					if n.Subtree != nil && add(repo.TreeBlob, *n.Subtree) {
						next[i] = append(next[i], *n.Subtree)
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		trees = trees[:0]
		for _, n := range next {
			trees = append(trees, n...)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, id := range lists {
		g.Go(func() error {
			err := r.LoadChunkList(gctx, []repo.ID{id}, func(c repo.DiskChunk) error {
				add(repo.DataBlob, c.ID)
				return nil
			})
			if err != nil {
				return fmt.Errorf("%w; run check", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	prog.Done(len(sns))
	for k := range used {
		if !r.HasBlob(k.t, k.id) {
			return nil, fmt.Errorf("%s blob %s is used by a snapshot but not in the index; run check", k.t, k.id.Str())
		}
	}
	return used, nil
}

// String summarises the plan for people (--dry-run).
func (p *Plan) String() string {
	var b strings.Builder
	var unindexed int
	var delBytes, repBytes int64
	for _, d := range p.Delete {
		delBytes += d.Size
		if d.Unindexed {
			unindexed++
		}
	}
	for _, r := range p.Repack {
		repBytes += r.Size
	}
	fmt.Fprintf(&b, "snapshots:          %d\n", p.Snapshots)
	fmt.Fprintf(&b, "used data:          %d blobs, %s\n", p.UsedBlobs, humanize.IBytes(uint64(p.UsedBytes)))
	fmt.Fprintf(&b, "unused data:        %d blobs, %s\n", p.UnusedBlobs, humanize.IBytes(uint64(p.UnusedBytes)))
	if p.DuplicateBlobs > 0 {
		fmt.Fprintf(&b, "duplicate blobs:    %d (one copy kept)\n", p.DuplicateBlobs)
	}
	fmt.Fprintf(&b, "packs to delete:    %d (%s", len(p.Delete), humanize.IBytes(uint64(delBytes)))
	if unindexed > 0 {
		fmt.Fprintf(&b, ", %d unindexed", unindexed)
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "packs to repack:    %d (%s)\n", len(p.Repack), humanize.IBytes(uint64(repBytes)))
	fmt.Fprintf(&b, "packs to keep:      %d\n", p.KeepPacks)
	if len(p.MissingPacks) > 0 {
		fmt.Fprintf(&b, "missing packs:      %d (unused; dropped from the index)\n", len(p.MissingPacks))
	}
	fmt.Fprintf(&b, "bytes to rewrite:   %s\n", humanize.IBytes(uint64(p.BytesRewrite)))
	fmt.Fprintf(&b, "bytes freed:        %s of %s\n", humanize.IBytes(uint64(max(p.BytesFreed, 0))), humanize.IBytes(uint64(p.RepositorySize)))
	fmt.Fprintf(&b, "unused after prune: %s (max-unused %s)\n", humanize.IBytes(uint64(p.UnusedAfter)), p.MaxUnused)
	if p.CompactHistory {
		fmt.Fprintf(&b, "history files:      %d (to merge into one)\n", p.HistoryFiles)
	}
	if p.TempFiles > 0 {
		fmt.Fprintf(&b, "temporary files:    %d (%s, left by interrupted writers, to remove)\n", p.TempFiles, humanize.IBytes(uint64(p.TempBytes)))
	}
	return b.String()
}

var errExecuted = errors.New("prune plan already executed")
