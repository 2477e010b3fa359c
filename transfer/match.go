package transfer

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/bunkerbackup/bunker/repo"
)

// findCopy returns the snapshot of existing (in dst) that is a copy of sn,
// or nil.
func (c *copier) findCopy(ctx context.Context, sn *repo.Snapshot, existing []*repo.Snapshot) (*repo.Snapshot, error) {
	for _, e := range existing {
		if !e.Time.Equal(sn.Time) || e.Hostname != sn.Hostname || !slices.Equal(e.Paths, sn.Paths) ||
			(e.Tree == nil) != (sn.Tree == nil) || !sameDisks(e.Disks, sn.Disks) {
			continue
		}
		if sn.Tree != nil {
			same, err := c.sameTree(ctx, *sn.Tree, *e.Tree)
			if err != nil {
				return nil, err
			}
			if !same {
				continue
			}
		}
		return e, nil
	}
	return nil, nil
}

// sameDisks compares disks by their repository-independent content: name,
// size, whole-disk digest and chunk figures.
func sameDisks(a, b []repo.Disk) bool {
	return slices.EqualFunc(a, b, func(x, y repo.Disk) bool {
		return x.Name == y.Name && x.Size == y.Size && x.Digest == y.Digest && x.Digest != "" &&
			x.Chunks == y.Chunks && x.DataBytes == y.DataBytes && x.SectorSize == y.SectorSize
	})
}

// sameTree reports whether the destination tree dstID is a copy of the
// source tree srcID: the same nodes with the same metadata, every file with
// the same chunk and hole lengths and every chunk present in dst. When it
// is, the pair is remembered so the subtrees are not compared again.
func (c *copier) sameTree(ctx context.Context, srcID, dstID repo.ID) (bool, error) {
	if nid, ok := c.mapped(c.trees, srcID); ok {
		return nid == dstID, nil
	}
	st, err := c.src.LoadTree(ctx, srcID)
	if err != nil {
		return false, fmt.Errorf("load tree %s: %w", srcID.Str(), err)
	}
	dt, err := c.dst.LoadTree(ctx, dstID)
	if err != nil {
		return false, fmt.Errorf("load destination tree %s: %w", dstID.Str(), err)
	}
	if len(st.Nodes) != len(dt.Nodes) {
		return false, nil
	}
	for i, s := range st.Nodes {
		d := dt.Nodes[i]
		if !sameNode(s, d) {
			return false, nil
		}
		for j, ch := range d.Content {
			if ch.ID != nil && !c.dst.HasBlob(repo.DataBlob, *ch.ID) {
				return false, nil
			}
			if ch.Len != s.Content[j].Len {
				return false, nil
			}
		}
		if s.Subtree != nil {
			same, err := c.sameTree(ctx, *s.Subtree, *d.Subtree)
			if err != nil || !same {
				return false, err
			}
		}
	}
	c.remember(c.trees, srcID, dstID)
	return true, nil
}

func sameNode(a, b *repo.Node) bool {
	if a.Name != b.Name || a.Type != b.Type || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID ||
		a.User != b.User || a.Group != b.Group || !a.ModTime.Equal(b.ModTime) || a.Size != b.Size ||
		a.Inode != b.Inode || a.LinkTarget != b.LinkTarget || a.Rdev != b.Rdev ||
		(a.Subtree == nil) != (b.Subtree == nil) || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if (a.Content[i].ID == nil) != (b.Content[i].ID == nil) {
			return false
		}
	}
	return slices.EqualFunc(a.Xattrs, b.Xattrs, func(x, y repo.Xattr) bool {
		return x.Name == y.Name && bytes.Equal(x.Value, y.Value)
	})
}
