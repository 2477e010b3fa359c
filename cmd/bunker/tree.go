package main

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
)

// walkTree calls fn for every node below the tree id, depth first in name
// order, with its slash-separated snapshot path (dir is the path of id).
func walkTree(ctx context.Context, r *repo.Repository, id repo.ID, dir string, fn func(p string, n *repo.Node) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("load tree %s of %s: %w", id.Str(), dir, err)
	}
	for _, n := range t.Nodes {
		p := path.Join(dir, n.Name)
		if err := fn(p, n); err != nil {
			return err
		}
		if n.Type == repo.NodeDir && n.Subtree != nil {
			if err := walkTree(ctx, r, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookupPath finds the node at the slash-separated path p of a snapshot's
// file tree.
func lookupPath(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, p string) (*repo.Node, error) {
	if sn.Tree == nil {
		return nil, fmt.Errorf("snapshot %s holds no files, only disks", sn.ID.Str())
	}
	if strings.Trim(p, "/") == "" {
		return nil, usageErrorf("give a path below the snapshot root, not %q", p)
	}
	n, err := restore.Lookup(ctx, r, *sn.Tree, p)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
	}
	return n, nil
}

// displayPath prints a path as is when it is valid, printable UTF-8, else
// Go-quoted so that every byte is visible and a line holds one path.
func displayPath(p string) string {
	if utf8.ValidString(p) && strings.IndexFunc(p, func(c rune) bool { return !unicode.IsPrint(c) }) < 0 {
		return p
	}
	return strconv.Quote(p)
}
