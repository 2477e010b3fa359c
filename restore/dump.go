package restore

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bunkerbackup/bunker/repo"
)

// Lookup finds the node at the slash-separated snapshot path p (such as
// "/home/ann/notes.txt") below the root tree.
func Lookup(ctx context.Context, r Repo, root repo.ID, p string) (*repo.Node, error) {
	parts := splitPath(p)
	if len(parts) == 0 {
		return nil, fmt.Errorf("lookup %q: the snapshot root has no node", p)
	}
	id := root
	for i, name := range parts {
		tree, err := r.LoadTree(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("lookup %s: load tree %s: %w", p, id.Str(), err)
		}
		var found *repo.Node
		for _, n := range tree.Nodes {
			if n.Name == name {
				found = n
				break
			}
		}
		if found == nil {
			return nil, fmt.Errorf("lookup %s: %s not found", p, "/"+strings.Join(parts[:i+1], "/"))
		}
		if i == len(parts)-1 {
			return found, nil
		}
		if found.Type != repo.NodeDir || found.Subtree == nil {
			return nil, fmt.Errorf("lookup %s: %s is not a directory", p, "/"+strings.Join(parts[:i+1], "/"))
		}
		id = *found.Subtree
	}
	return nil, fmt.Errorf("lookup %s: not found", p)
}

// Dump writes the content of the regular file n to w, holes as zeros.
// Blobs are loaded ahead by a pool of GOMAXPROCS workers.
func Dump(ctx context.Context, r Repo, n *repo.Node, w io.Writer) error {
	if n.Type != repo.NodeFile {
		return fmt.Errorf("dump %s: not a regular file (%s)", n.Name, n.Type)
	}
	for _, c := range n.Content {
		if c.Len > maxChunk {
			return fmt.Errorf("dump %s: chunk of %d bytes exceeds the limit", n.Name, c.Len)
		}
	}
	workers := workerCount(0)
	gen := func(ctx context.Context, emit func(repo.Chunk) error) error {
		for _, c := range n.Content {
			if err := emit(c); err != nil {
				return err
			}
		}
		return nil
	}
	load := func(ctx context.Context, c repo.Chunk) loaded {
		if c.ID == nil {
			return loaded{}
		}
		p, err := loadBlob(ctx, r, *c.ID, int(c.Len))
		return loaded{p: p, err: err}
	}
	var off uint64
	sink := func(c repo.Chunk, l loaded) error {
		defer putBuf(l.p)
		if l.err != nil {
			return fmt.Errorf("dump %s: offset %d: %w", n.Name, off, l.err)
		}
		var err error
		if c.ID == nil {
			err = writeZeros(w, int64(c.Len))
		} else {
			_, err = w.Write(*l.p)
		}
		if err != nil {
			return fmt.Errorf("dump %s: %w", n.Name, err)
		}
		off += c.Len
		return nil
	}
	return ordered(ctx, workers, 4*workers, gen, load, sink)
}

// loaded is a blob loaded by a worker.
type loaded struct {
	p   *[]byte
	err error
}

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBuf)))
		if _, err := w.Write(zeroBuf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
