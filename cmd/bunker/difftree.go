package main

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/bunkerbackup/bunker/repo"
)

// diffTrees compares two trees (either may be nil) in name order.
func diffTrees(ctx context.Context, r *repo.Repository, a, b *repo.ID, dir string, d *diffJSON) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	load := func(id *repo.ID) ([]*repo.Node, error) {
		if id == nil {
			return nil, nil
		}
		t, err := r.LoadTree(ctx, *id)
		if err != nil {
			return nil, fmt.Errorf("load tree of %s: %w", dir, err)
		}
		return t.Nodes, nil
	}
	na, err := load(a)
	if err != nil {
		return err
	}
	nb, err := load(b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(na) || j < len(nb) {
		var x, y *repo.Node
		switch {
		case j >= len(nb) || (i < len(na) && na[i].Name < nb[j].Name):
			x = na[i]
			i++
		case i >= len(na) || nb[j].Name < na[i].Name:
			y = nb[j]
			j++
		default:
			x, y = na[i], nb[j]
			i, j = i+1, j+1
		}
		if err := diffNodes(ctx, r, x, y, dir, d); err != nil {
			return err
		}
	}
	return nil
}

func diffNodes(ctx context.Context, r *repo.Repository, x, y *repo.Node, dir string, d *diffJSON) error {
	var p string
	switch {
	case y == nil:
		p = path.Join(dir, x.Name)
		d.add("-", p)
		if x.Type == repo.NodeDir {
			return diffTrees(ctx, r, x.Subtree, nil, p, d)
		}
		return nil
	case x == nil:
		p = path.Join(dir, y.Name)
		d.add("+", p)
		if y.Type == repo.NodeDir {
			return diffTrees(ctx, r, nil, y.Subtree, p, d)
		}
		return nil
	}
	p = path.Join(dir, x.Name)
	switch {
	case x.Type != y.Type:
		d.add("T", p)
	case x.Type == repo.NodeFile && (x.Size != y.Size || !sameContent(x.Content, y.Content)):
		d.add("M", p)
	case x.Type == repo.NodeSymlink && x.LinkTarget != y.LinkTarget:
		d.add("M", p)
	case x.Mode != y.Mode || x.UID != y.UID || x.GID != y.GID || !x.ModTime.Equal(y.ModTime) || !sameXattrs(x.Xattrs, y.Xattrs):
		d.add("U", p)
	}
	if x.Type == repo.NodeDir || y.Type == repo.NodeDir {
		var sa, sb *repo.ID
		if x.Type == repo.NodeDir {
			sa = x.Subtree
		}
		if y.Type == repo.NodeDir {
			sb = y.Subtree
		}
		return diffTrees(ctx, r, sa, sb, p, d)
	}
	return nil
}

func sameContent(a, b []repo.Chunk) bool {
	return slices.EqualFunc(a, b, func(x, y repo.Chunk) bool {
		return x.Len == y.Len && (x.ID == nil) == (y.ID == nil) && (x.ID == nil || *x.ID == *y.ID)
	})
}

func sameXattrs(a, b []repo.Xattr) bool {
	return slices.EqualFunc(a, b, func(x, y repo.Xattr) bool { return x.Name == y.Name && string(x.Value) == string(y.Value) })
}

// diffDisks compares the disks of two snapshots by name and digest.
func diffDisks(a, b *repo.Snapshot, d *diffJSON) {
	old := map[string]repo.Disk{}
	for _, x := range a.Disks {
		old[x.Name] = x
	}
	for _, y := range b.Disks {
		x, ok := old[y.Name]
		switch {
		case !ok:
			d.add("+", "disk:"+y.Name)
		case x.Digest != y.Digest || x.Size != y.Size:
			d.add("M", "disk:"+y.Name)
		}
		delete(old, y.Name)
	}
	for _, x := range a.Disks {
		if _, ok := old[x.Name]; ok {
			d.add("-", "disk:"+x.Name)
		}
	}
}
