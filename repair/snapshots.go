package repair

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/retention"
)

// RepairedTag is the tag of every snapshot [Snapshots] writes.
const RepairedTag = "repaired"

// ErrIndexNeedsRepair means the index does not reflect the packs, so that
// blobs would look missing that are stored, or present that are lost:
// snapshots must not be repaired against it. Run [Index] first.
var ErrIndexNeedsRepair = errors.New("the index does not match the packs")

// What a repair does to a place in a snapshot.
const (
	RemovedFile = "removed file"      // a file with missing content
	EmptiedDir  = "emptied directory" // a directory whose tree is missing or damaged
	RemovedDisk = "removed disk"      // a disk with a missing chunk list or chunk
)

// maxWarnings bounds the warnings a repaired snapshot records; the rest are
// counted in one more.
const maxWarnings = 1000

// SnapshotOptions configure [Snapshots].
type SnapshotOptions struct {
	// IDs selects the snapshots to repair; nil selects every snapshot that
	// Filter accepts (nil Filter: all).
	IDs    []repo.ID
	Filter func(*repo.Snapshot) bool
	// Forget removes each damaged original once its repaired copy is
	// stored, unless the original is protected or younger than the
	// repository's minimum retention period.
	Forget bool
	// DryRun reports what would change and writes and removes nothing.
	DryRun bool
	// Now is the time protections and the minimum retention are judged at.
	Now      time.Time
	Progress Progress
}

// Change is one place of a snapshot a repair leaves out.
type Change struct {
	Path   string `json:"path"`   // a path in the file tree, or "disk:NAME"
	Action string `json:"action"` // RemovedFile, EmptiedDir or RemovedDisk
	Reason string `json:"reason"`
}

func (c Change) String() string { return c.Action + " " + c.Path + ": " + c.Reason }

// SnapshotRepair is the repair of one damaged snapshot.
type SnapshotRepair struct {
	Original repo.ID   `json:"original"`
	Time     time.Time `json:"time"`
	Changes  []Change  `json:"changes"`
	// Repaired is the repaired copy: written by this run, or found from an
	// earlier (interrupted) run when Existing is set. Nil with DryRun and
	// when nothing restorable is left (Empty).
	Repaired *repo.ID `json:"repaired,omitempty"`
	Existing bool     `json:"existing,omitempty"`
	Empty    bool     `json:"empty,omitempty"`
	// Forgotten reports that the original was removed; Kept says why
	// Forget leaves it (with DryRun too).
	Forgotten bool   `json:"forgotten"`
	Kept      string `json:"kept,omitempty"`
}

// UnreadableSnapshot is a snapshot file that cannot be loaded; it is left
// alone.
type UnreadableSnapshot struct {
	Reason string `json:"reason"`
}

// SnapshotResult reports what [Snapshots] found and did.
type SnapshotResult struct {
	DryRun     bool                 `json:"dry_run"`
	Checked    int                  `json:"checked"`
	Intact     int                  `json:"intact"`
	Repaired   []SnapshotRepair     `json:"repaired"`
	Written    int                  `json:"written"`
	Forgotten  int                  `json:"forgotten"`
	Unreadable []UnreadableSnapshot `json:"unreadable"`
}

// Snapshots repairs damaged snapshots (see the package documentation). The
// index must match the packs: run [Index] first, else Snapshots fails with
// ErrIndexNeedsRepair. The caller holds the exclusive lock (a shared one
// with DryRun).
//
// Order: the trees of every repaired copy are stored and flushed with their
// index, then the copies, and only then (with Forget) the originals and
// their expired protections are removed. An original whose copy an earlier,
// interrupted run wrote is not copied again.
func Snapshots(ctx context.Context, r *repo.Repository, opts SnapshotOptions) (*SnapshotResult, error) {
	prog := opts.Progress
	if prog == nil {
		prog = repo.NoProgress{}
	}
	if err := indexMatchesPacks(ctx, r); err != nil {
		return nil, err
	}
	all, loadErrs, err := r.SnapshotsWithErrors(ctx)
	if err != nil {
		return nil, fmt.Errorf("repair snapshots: %w", err)
	}
	res := &SnapshotResult{DryRun: opts.DryRun, Repaired: []SnapshotRepair{}, Unreadable: []UnreadableSnapshot{}}
	if opts.IDs == nil {
		for _, err := range loadErrs {
			res.Unreadable = append(res.Unreadable, UnreadableSnapshot{Reason: err.Error()})
		}
	}
	byOriginal := make(map[repo.ID][]*repo.Snapshot) // original -> its repaired copies
	byID := make(map[repo.ID]*repo.Snapshot, len(all))
	for _, sn := range all {
		byID[sn.ID] = sn
		// Re-tagged copies (bunker tag) name their original too; only
		// repaired copies, tagged and marked incomplete, count here.
		if sn.Original != nil && sn.Incomplete && slices.Contains(sn.Tags, RepairedTag) {
			byOriginal[*sn.Original] = append(byOriginal[*sn.Original], sn)
		}
	}
	var sel []*repo.Snapshot
	if opts.IDs != nil {
		for _, id := range opts.IDs {
			sn := byID[id]
			if sn == nil {
				return nil, fmt.Errorf("repair snapshots: snapshot %s: %w", id.Str(), backend.ErrNotExist)
			}
			if !slices.Contains(sel, sn) {
				sel = append(sel, sn)
			}
		}
	} else {
		for _, sn := range all {
			if opts.Filter == nil || opts.Filter(sn) {
				sel = append(sel, sn)
			}
		}
	}

	w := &walker{r: r, dryRun: opts.DryRun, trees: make(map[repo.ID]*treeFix), disks: make(map[string]string)}
	type pending struct {
		sn  *repo.Snapshot
		rep int // index in res.Repaired
	}
	var toSave []pending
	prog.Phase("check snapshots", len(sel))
	for _, sn := range sel {
		fixed, changes, err := w.snapshot(ctx, sn)
		if err != nil {
			return nil, fmt.Errorf("repair snapshots: snapshot %s: %w", sn.ID.Str(), err)
		}
		res.Checked++
		prog.Done(1)
		if len(changes) == 0 {
			res.Intact++
			continue
		}
		rep := SnapshotRepair{Original: sn.ID, Time: sn.Time, Changes: changes, Empty: fixed == nil}
		if c := existingCopy(sn, byOriginal); c != nil {
			id := c.ID
			rep.Repaired, rep.Existing = &id, true
		} else if fixed != nil && !opts.DryRun {
			toSave = append(toSave, pending{sn: fixed, rep: len(res.Repaired)})
		}
		res.Repaired = append(res.Repaired, rep)
	}
	if len(res.Repaired) == 0 {
		return res, nil
	}
	var keep func(*repo.Snapshot) string
	if opts.Forget {
		if keep, err = keepRules(ctx, r, opts.Now); err != nil {
			return res, fmt.Errorf("repair snapshots: %w", err)
		}
		for i := range res.Repaired {
			res.Repaired[i].Kept = keep(byID[res.Repaired[i].Original])
		}
	}
	if opts.DryRun {
		return res, nil
	}

	// The trees first (with their index), then the copies.
	if err := r.Flush(ctx); err != nil {
		return res, fmt.Errorf("repair snapshots: %w", err)
	}
	prog.Phase("write snapshots", len(toSave))
	for _, p := range toSave {
		id, err := r.SaveSnapshot(ctx, p.sn)
		if err != nil {
			return res, fmt.Errorf("repair snapshots: %w", err)
		}
		res.Repaired[p.rep].Repaired = &id
		res.Written++
		prog.Done(1)
	}
	if !opts.Forget {
		return res, nil
	}

	// Then the originals, unless they must be kept.
	prog.Phase("remove originals", len(res.Repaired))
	for i := range res.Repaired {
		rep := &res.Repaired[i]
		if rep.Kept != "" {
			prog.Done(1)
			continue
		}
		if err := r.RemoveSnapshot(ctx, rep.Original); err != nil {
			return res, fmt.Errorf("repair snapshots: %w", err)
		}
		rep.Forgotten = true
		res.Forgotten++
		// Its protections have all expired (it would be kept otherwise).
		if _, err := r.RemoveProtections(ctx, rep.Original); err != nil {
			return res, fmt.Errorf("repair snapshots: %w", err)
		}
		prog.Done(1)
	}
	return res, nil
}

// existingCopy returns a repaired copy of sn that an earlier run wrote, or
// nil. A copy names its first original, also when it is the copy of a
// copy, and keeps the warnings of the snapshot it copies, adding its own:
// the copies of an original are the snapshots that name it, and the copies
// of a copy are those that name the same original and extend its warnings.
// Of several, the one with the most warnings is the latest repair.
func existingCopy(sn *repo.Snapshot, byOriginal map[repo.ID][]*repo.Snapshot) *repo.Snapshot {
	var best *repo.Snapshot
	consider := func(c *repo.Snapshot) {
		if best == nil || len(c.Warnings) > len(best.Warnings) {
			best = c
		}
	}
	for _, c := range byOriginal[sn.ID] {
		consider(c)
	}
	if sn.Original != nil {
		for _, c := range byOriginal[*sn.Original] {
			if c.ID != sn.ID && len(c.Warnings) > len(sn.Warnings) &&
				slices.Equal(c.Warnings[:len(sn.Warnings)], sn.Warnings) && c.Time.Equal(sn.Time) {
				consider(c)
			}
		}
	}
	return best
}

// keepRules returns a function that says why a snapshot must not be removed
// ("" when it may be): it is protected or younger than the minimum
// retention period (docs/design.md §16).
func keepRules(ctx context.Context, r *repo.Repository, now time.Time) (func(*repo.Snapshot) string, error) {
	var minCut time.Time
	if s := r.Config().MinRetention; s != "" {
		d, err := retention.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("repository minimum retention: %w", err)
		}
		minCut = d.Before(now)
	}
	ps, err := r.Protections(ctx)
	if err != nil {
		// An unreadable protection is not an absent one.
		return nil, fmt.Errorf("read protections: %w", err)
	}
	protected := repo.ProtectedSnapshots(ps, now)
	return func(sn *repo.Snapshot) string {
		if _, ok := protected[sn.ID]; ok {
			return retention.ReasonProtected
		}
		if !minCut.IsZero() && sn.Time.After(minCut) {
			return "min-retention (younger than " + r.Config().MinRetention + ")"
		}
		return ""
	}, nil
}

// indexMatchesPacks fails with ErrIndexNeedsRepair when an index file cannot
// be loaded, when the index names a pack that does not exist, or when a pack
// the index does not name has a readable header.
func indexMatchesPacks(ctx context.Context, r *repo.Repository) error {
	hint := func(format string, args ...any) error {
		return fmt.Errorf("repair snapshots: %s: %w", fmt.Sprintf(format, args...), ErrIndexNeedsRepair)
	}
	if errs := r.IndexErrors(); len(errs) > 0 {
		return hint("%d index file(s) cannot be read (%v)", len(errs), errs[0])
	}
	packs, err := r.ListPacks(ctx)
	if err != nil {
		return fmt.Errorf("repair snapshots: %w", err)
	}
	indexed := make(map[repo.ID]bool)
	for _, id := range r.IndexedPacks() {
		indexed[id] = true
		if _, ok := packs[id]; !ok {
			return hint("the index names pack %s, which does not exist", id.Str())
		}
	}
	for id := range packs {
		if indexed[id] {
			continue
		}
		if _, err := r.LoadPackHeader(ctx, id); err == nil {
			return hint("pack %s is not in the index", id.Str())
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// walker finds the damage in snapshots and builds their repaired trees.
type walker struct {
	r      *repo.Repository
	dryRun bool
	trees  map[repo.ID]*treeFix
	disks  map[string]string // chunk lists -> damage ("" when intact)
	empty  *repo.ID          // the empty tree, once stored
}

// treeFix is the repair of one tree.
type treeFix struct {
	id      repo.ID  // the repaired tree (the same tree when unchanged)
	changed bool     // id differs from the original
	changes []Change // paths relative to the tree; "" is the tree itself
	nodes   int      // nodes left
}

// snapshot returns the repaired copy of sn (nil when nothing restorable is
// left) and the changes; no changes means sn is intact.
func (w *walker) snapshot(ctx context.Context, sn *repo.Snapshot) (*repo.Snapshot, []Change, error) {
	fixed := *sn
	fixed.ID = repo.ID{}
	var changes []Change
	left := 0
	if sn.Tree != nil {
		f, err := w.tree(ctx, *sn.Tree)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range f.changes {
			c.Path = "/" + c.Path
			changes = append(changes, c)
		}
		if f.changed {
			id := f.id
			fixed.Tree = &id
		}
		left += f.nodes
	}
	fixed.Disks = nil
	for _, d := range sn.Disks {
		why, err := w.disk(ctx, d)
		if err != nil {
			return nil, nil, err
		}
		if why != "" {
			changes = append(changes, Change{Path: "disk:" + d.Name, Action: RemovedDisk, Reason: why})
			continue
		}
		fixed.Disks = append(fixed.Disks, d)
		left++
	}
	if len(changes) == 0 {
		return sn, nil, nil
	}
	if left == 0 {
		return nil, changes, nil
	}
	if !slices.Contains(fixed.Tags, RepairedTag) {
		fixed.Tags = append(slices.Clone(sn.Tags), RepairedTag)
	}
	if fixed.Original == nil {
		id := sn.ID
		fixed.Original = &id
	}
	fixed.Incomplete = true
	fixed.Warnings = slices.Clone(sn.Warnings)
	for i, c := range changes {
		if i == maxWarnings {
			fixed.Warnings = append(fixed.Warnings, fmt.Sprintf("repair: %d more places left out", len(changes)-i))
			break
		}
		fixed.Warnings = append(fixed.Warnings, "repair: "+c.String())
	}
	return &fixed, changes, nil
}

// tree repairs the tree id and, below it, every subtree.
func (w *walker) tree(ctx context.Context, id repo.ID) (*treeFix, error) {
	if f, ok := w.trees[id]; ok {
		return f, nil
	}
	var f *treeFix
	var err error
	if len(w.r.LookupBlob(repo.TreeBlob, id)) == 0 {
		f, err = w.emptied(ctx, fmt.Sprintf("tree %s is missing", id.Str()))
	} else if t, lerr := w.r.LoadTree(ctx, id); lerr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f, err = w.emptied(ctx, fmt.Sprintf("tree %s is damaged: %v", id.Str(), lerr))
	} else {
		f, err = w.nodes(ctx, id, t)
	}
	if err != nil {
		return nil, err
	}
	w.trees[id] = f
	return f, nil
}

// nodes repairs the nodes of the tree id.
func (w *walker) nodes(ctx context.Context, id repo.ID, t *repo.Tree) (*treeFix, error) {
	f := &treeFix{id: id}
	nodes := make([]*repo.Node, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		switch {
		case n.Type == repo.NodeFile:
			if why := w.fileDamage(n); why != "" {
				f.changes = append(f.changes, Change{Path: n.Name, Action: RemovedFile, Reason: why})
				f.changed = true
				continue
			}
		case n.Type == repo.NodeDir && n.Subtree != nil:
			sub, err := w.tree(ctx, *n.Subtree)
			if err != nil {
				return nil, err
			}
			for _, c := range sub.changes {
				c.Path = path.Join(n.Name, c.Path)
				f.changes = append(f.changes, c)
			}
			if sub.changed {
				nn := *n
				sid := sub.id
				nn.Subtree = &sid
				n = &nn
				f.changed = true
			}
		}
		nodes = append(nodes, n)
	}
	f.nodes = len(nodes)
	if !f.changed || w.dryRun {
		return f, nil
	}
	nid, err := w.r.SaveTree(ctx, &repo.Tree{Nodes: nodes})
	if err != nil {
		return nil, err
	}
	f.id = nid
	return f, nil
}

// emptied is the repair of a tree that cannot be read: an empty tree.
func (w *walker) emptied(ctx context.Context, why string) (*treeFix, error) {
	f := &treeFix{changed: true, changes: []Change{{Action: EmptiedDir, Reason: why}}}
	if w.dryRun {
		return f, nil
	}
	if w.empty == nil {
		id, err := w.r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{}})
		if err != nil {
			return nil, err
		}
		w.empty = &id
	}
	f.id = *w.empty
	return f, nil
}

// fileDamage says what is wrong with a file's content ("" if nothing), as
// check sees it: missing chunks, chunk lengths that disagree with the index,
// or content that does not cover the file's size.
func (w *walker) fileDamage(n *repo.Node) string {
	var covered uint64
	var chunks, missing, wrong int
	for _, ch := range n.Content {
		covered += ch.Len
		if ch.ID == nil {
			continue
		}
		chunks++
		locs := w.r.LookupBlob(repo.DataBlob, *ch.ID)
		switch {
		case len(locs) == 0:
			missing++
		case uint64(locs[0].PlainLength) != ch.Len:
			wrong++
		}
	}
	var why []string
	if missing > 0 {
		why = append(why, fmt.Sprintf("%d of %d chunks missing", missing, chunks))
	}
	if wrong > 0 {
		why = append(why, fmt.Sprintf("%d chunks differ in length from the index", wrong))
	}
	if covered != n.Size {
		why = append(why, fmt.Sprintf("content covers %d bytes, the size is %d", covered, n.Size))
	}
	return strings.Join(why, "; ")
}

// disk says what is wrong with a disk's chunk lists and chunks ("" if
// nothing).
func (w *walker) disk(ctx context.Context, d repo.Disk) (string, error) {
	var key strings.Builder
	for _, id := range d.ChunkLists {
		key.Write(id[:])
	}
	fmt.Fprintf(&key, "/%d/%d/%d", d.Chunks, d.DataBytes, d.Size)
	if why, ok := w.disks[key.String()]; ok {
		return why, nil
	}
	why, err := w.diskDamage(ctx, d)
	if err != nil {
		return "", err
	}
	w.disks[key.String()] = why
	return why, nil
}

func (w *walker) diskDamage(ctx context.Context, d repo.Disk) (string, error) {
	var count, missing, end uint64
	var bytes int64
	first := uint64(0)
	for _, lid := range d.ChunkLists {
		if len(w.r.LookupBlob(repo.TreeBlob, lid)) == 0 {
			return fmt.Sprintf("chunk list %s is missing", lid.Str()), nil
		}
		err := w.r.LoadChunkList(ctx, []repo.ID{lid}, func(ch repo.DiskChunk) error {
			count++
			bytes += int64(ch.Length)
			end = ch.Offset + uint64(ch.Length)
			if len(w.r.LookupBlob(repo.DataBlob, ch.ID)) == 0 {
				if missing == 0 {
					first = ch.Offset
				}
				missing++
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return fmt.Sprintf("chunk list %s is damaged: %v", lid.Str(), err), nil
		}
	}
	if missing > 0 {
		return fmt.Sprintf("%d of %d chunks missing, the first at offset %d", missing, count, first), nil
	}
	if count != d.Chunks || bytes != d.DataBytes || end > uint64(d.Size) {
		return fmt.Sprintf("chunk lists hold %d chunks, %d bytes, ending at %d; the snapshot records %d chunks, %d bytes, size %d",
			count, bytes, end, d.Chunks, d.DataBytes, d.Size), nil
	}
	return "", nil
}
