package check

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/bunkerbackup/bunker/repo"
)

type treeState struct {
	bad bool // the tree, or something below it, is damaged or missing
}

type listState struct {
	bad     bool
	loadErr bool
	count   uint64
	bytes   int64
	end     uint64
	badAt   []uint64 // offsets of chunks with damaged or missing data
	badIDs  []repo.ID
}

// unusable reports whether a blob is missing from the index or damaged, and
// records a missing blob as a problem once.
func (c *checker) unusable(t repo.BlobType, id repo.ID, missing map[repo.ID]bool, user string) bool {
	if c.bad[t][id] {
		return true
	}
	if len(c.r.LookupBlob(t, id)) > 0 {
		return false
	}
	if !missing[id] {
		missing[id] = true
		c.res.add(Problem{Severity: Error, Kind: BlobMissing, Blobs: []repo.ID{id},
			Message: fmt.Sprintf("%s blob %s used by %s is not in the index", t, id.Str(), user)})
	}
	return true
}

// checkSnapshots loads every snapshot and walks its trees and disk chunk
// lists, reporting blobs that are missing or damaged and the places that use
// them.
func (c *checker) checkSnapshots(ctx context.Context) error {
	ids := c.snapshots
	var sns []*repo.Snapshot
	for _, id := range ids {
		sn, err := c.r.LoadSnapshot(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.res.add(Problem{Severity: Error, Kind: SnapshotDamaged, File: "snapshots/" + id.String(), Message: err.Error()})
			continue
		}
		sns = append(sns, sn)
	}
	c.res.Snapshots = len(ids)
	trees := make(map[repo.ID]*treeState)
	lists := make(map[repo.ID]*listState)
	missing := make(map[repo.ID]bool)
	anyBad := false
	c.prog.Phase("check snapshots", len(sns))
	for _, sn := range sns {
		if sn.Tree != nil {
			bad, err := c.visitTree(ctx, *sn.Tree, "snapshot "+sn.ID.Str()+" /", trees, missing)
			if err != nil {
				return err
			}
			anyBad = anyBad || bad
		}
		for _, d := range sn.Disks {
			var count uint64
			var bytes int64
			var end uint64
			dbad := false
			for _, lid := range d.ChunkLists {
				ls, err := c.visitChunkList(ctx, lid, fmt.Sprintf("disk %q of snapshot %s", d.Name, sn.ID.Str()), lists, missing)
				if err != nil {
					return err
				}
				dbad = dbad || ls.bad
				count += ls.count
				bytes += ls.bytes
				end = max(end, ls.end)
			}
			anyBad = anyBad || dbad
			if dbad {
				continue
			}
			if count != d.Chunks || bytes != d.DataBytes || end > uint64(d.Size) {
				c.res.add(Problem{Severity: Error, Kind: TreeDamaged,
					Message: fmt.Sprintf("snapshot %s disk %q: chunk lists hold %d chunks, %d bytes, ending at %d; the snapshot records %d chunks, %d bytes, size %d",
						sn.ID.Str(), d.Name, count, bytes, end, d.Chunks, d.DataBytes, d.Size)})
			}
		}
		c.prog.Done(1)
	}
	if !anyBad {
		return nil
	}
	for _, sn := range sns {
		if sn.Tree != nil {
			if err := c.collectUses(ctx, sn, *sn.Tree, "/", trees, missing); err != nil {
				return err
			}
		}
		for _, d := range sn.Disks {
			var blobs []repo.ID
			var offsets []uint64
			for _, lid := range d.ChunkLists {
				ls := lists[lid]
				if ls == nil {
					continue
				}
				if ls.loadErr {
					blobs = append(blobs, lid)
					continue
				}
				blobs = append(blobs, ls.badIDs...)
				offsets = append(offsets, ls.badAt...)
			}
			if len(blobs) == 0 {
				continue
			}
			u := Use{Snapshot: sn.ID, Disk: d.Name, DamagedChunks: len(offsets)}
			where := fmt.Sprintf("disk %s", d.Name)
			if len(offsets) > 0 {
				where += fmt.Sprintf(" (%d damaged chunks, first at offset %d)", len(offsets), offsets[0])
				u.Offset = &offsets[0]
			} else {
				where += " (chunk list damaged)"
			}
			u.Path, u.Blobs = where, dedupe(blobs)
			c.res.Affected = append(c.res.Affected, u)
		}
	}
	return nil
}

func (c *checker) visitTree(ctx context.Context, id repo.ID, user string, trees map[repo.ID]*treeState, missing map[repo.ID]bool) (bool, error) {
	if st, ok := trees[id]; ok {
		return st.bad, nil
	}
	st := &treeState{}
	trees[id] = st
	if c.unusable(repo.TreeBlob, id, missing, user) {
		st.bad = true
		return true, nil
	}
	t, err := c.r.LoadTree(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.res.add(Problem{Severity: Error, Kind: TreeDamaged, Blobs: []repo.ID{id}, Message: fmt.Sprintf("tree %s used by %s: %v", id.Str(), user, err)})
		c.bad[repo.TreeBlob][id] = true
		st.bad = true
		return true, nil
	}
	for _, n := range t.Nodes {
		var covered uint64
		for _, ch := range n.Content {
			covered += ch.Len
			if ch.ID == nil {
				continue
			}
			if c.unusable(repo.DataBlob, *ch.ID, missing, fmt.Sprintf("file %q in tree %s", n.Name, id.Str())) {
				st.bad = true
			} else if pbs := c.r.LookupBlob(repo.DataBlob, *ch.ID); len(pbs) > 0 && uint64(pbs[0].PlainLength) != ch.Len {
				c.res.add(Problem{Severity: Error, Kind: TreeDamaged, Blobs: []repo.ID{id, *ch.ID}, Message: fmt.Sprintf("file %q in tree %s: chunk %s is %d bytes long, the tree says %d", n.Name, id.Str(), ch.ID.Str(), pbs[0].PlainLength, ch.Len)})
				st.bad = true
			}
		}
		if n.Type == repo.NodeFile && covered != n.Size {
			c.res.add(Problem{Severity: Error, Kind: TreeDamaged, Blobs: []repo.ID{id}, Message: fmt.Sprintf("file %q in tree %s: content covers %d bytes, its size is %d", n.Name, id.Str(), covered, n.Size)})
			st.bad = true
		}
		if n.Type == repo.NodeDir && n.Subtree != nil {
			bad, err := c.visitTree(ctx, *n.Subtree, fmt.Sprintf("directory %q in tree %s", n.Name, id.Str()), trees, missing)
			if err != nil {
				return false, err
			}
			st.bad = st.bad || bad
		}
	}
	return st.bad, nil
}

func (c *checker) visitChunkList(ctx context.Context, id repo.ID, user string, lists map[repo.ID]*listState, missing map[repo.ID]bool) (*listState, error) {
	if ls, ok := lists[id]; ok {
		return ls, nil
	}
	ls := &listState{}
	lists[id] = ls
	if c.unusable(repo.TreeBlob, id, missing, user) {
		ls.bad, ls.loadErr = true, true
		return ls, nil
	}
	err := c.r.LoadChunkList(ctx, []repo.ID{id}, func(ch repo.DiskChunk) error {
		ls.count++
		ls.bytes += int64(ch.Length)
		ls.end = ch.Offset + uint64(ch.Length)
		if c.unusable(repo.DataBlob, ch.ID, missing, fmt.Sprintf("%s at offset %d", user, ch.Offset)) {
			ls.bad = true
			ls.badAt = append(ls.badAt, ch.Offset)
			ls.badIDs = append(ls.badIDs, ch.ID)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var be *repo.BlobError
		if !errors.As(err, &be) || !errors.Is(err, repo.ErrBlobNotFound) {
			c.res.add(Problem{Severity: Error, Kind: TreeDamaged, Blobs: []repo.ID{id}, Message: fmt.Sprintf("chunk list %s of %s: %v", id.Str(), user, err)})
		}
		c.bad[repo.TreeBlob][id] = true
		ls.bad, ls.loadErr = true, true
	}
	return ls, nil
}

// collectUses walks the damaged parts of a snapshot's tree and records the
// files and directories that use damaged or missing blobs.
func (c *checker) collectUses(ctx context.Context, sn *repo.Snapshot, id repo.ID, dir string, trees map[repo.ID]*treeState, missing map[repo.ID]bool) error {
	st := trees[id]
	if st == nil || !st.bad {
		return nil
	}
	if c.bad[repo.TreeBlob][id] || missing[id] {
		c.res.Affected = append(c.res.Affected, Use{Snapshot: sn.ID, Path: dir, File: dir, Blobs: []repo.ID{id}})
		return nil
	}
	t, err := c.r.LoadTree(ctx, id)
	if err != nil {
		return nil // reported by visitTree
	}
	for _, n := range t.Nodes {
		p := path.Join(dir, n.Name)
		var blobs []repo.ID
		for _, ch := range n.Content {
			if ch.ID != nil && (c.bad[repo.DataBlob][*ch.ID] || missing[*ch.ID]) {
				blobs = append(blobs, *ch.ID)
			}
		}
		if len(blobs) > 0 {
			c.res.Affected = append(c.res.Affected, Use{Snapshot: sn.ID, Path: p, File: p, Blobs: dedupe(blobs)})
		}
		if n.Type == repo.NodeDir && n.Subtree != nil {
			if err := c.collectUses(ctx, sn, *n.Subtree, p, trees, missing); err != nil {
				return err
			}
		}
	}
	return nil
}

func dedupe(ids []repo.ID) []repo.ID {
	seen := make(map[repo.ID]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
