package restore

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

// FindOptions selects the nodes a [Finder] reports.
type FindOptions struct {
	// Patterns are globs as path.Match takes them. A pattern without "/"
	// is matched against the name of each node; one with "/" against its
	// whole snapshot path, component by component, where "**" matches any
	// number of components and a leading "/" anchors the pattern at the
	// snapshot root (else it may match at any depth). A node matches when
	// any pattern does.
	Patterns []string
	// IgnoreCase matches patterns and names case-insensitively.
	IgnoreCase bool
	// Oldest and Newest, when not zero, bound the modification time of
	// the nodes reported (inclusive).
	Oldest, Newest time.Time
}

// Found is a node a [Finder] reported, with its slash-separated snapshot
// path.
type Found struct {
	Path string
	Node *repo.Node
}

// Finder searches snapshots' file trees for nodes whose names match
// patterns, as restic's find does. It remembers, per tree, what matched
// below it, so that the trees several snapshots share are loaded and
// searched once.
type Finder struct {
	r    Repo
	opts FindOptions
	pats []pattern
	// local is set when every pattern matches names alone: what matches
	// below a tree is then the same wherever the tree is, and the cache
	// is keyed by tree id only.
	local bool
	cache map[findKey]*findResult
}

type findKey struct {
	id  repo.ID
	dir string // the tree's path, empty when the Finder is local
}

// findResult is what matched below one tree, in walk order: each entry
// is a node of the tree that matched, that holds matches below it, or
// both.
type findResult struct {
	entries []findEntry
}

type findEntry struct {
	node  *repo.Node
	match bool
	sub   *findResult // nil when nothing below node matched
}

// NewFinder returns a Finder for opts that loads trees from r. With a nil
// r it only checks opts (the Finder must not search).
func NewFinder(r Repo, opts FindOptions) (*Finder, error) {
	if len(opts.Patterns) == 0 {
		return nil, fmt.Errorf("find: no pattern given")
	}
	f := &Finder{r: r, opts: opts, local: true, cache: make(map[findKey]*findResult)}
	for _, s := range opts.Patterns {
		if strings.Trim(s, "/") == "" {
			return nil, fmt.Errorf("invalid pattern %q: it names no file", s)
		}
		if opts.IgnoreCase {
			s = strings.ToLower(s)
		}
		p, err := parsePatterns([]string{s})
		if err != nil {
			return nil, err
		}
		if len(p) == 0 || !(len(p[0].parts) == 2 && p[0].parts[0] == "**") {
			f.local = false
		}
		f.pats = append(f.pats, p...)
	}
	return f, nil
}

// Find returns the nodes below the root tree that match, depth first in
// name order.
func (f *Finder) Find(ctx context.Context, root repo.ID) ([]Found, error) {
	res, err := f.search(ctx, root, nil)
	if err != nil {
		return nil, err
	}
	var out []Found
	flatten(res, "/", &out)
	return out, nil
}

func flatten(res *findResult, dir string, out *[]Found) {
	if res == nil {
		return
	}
	for _, e := range res.entries {
		p := path.Join(dir, e.node.Name)
		if e.match {
			*out = append(*out, Found{Path: p, Node: e.node})
		}
		flatten(e.sub, p, out)
	}
}

// search returns what matches below the tree id at the path given as
// components (nil when nothing does).
func (f *Finder) search(ctx context.Context, id repo.ID, dir []string) (*findResult, error) {
	key := findKey{id: id}
	if !f.local {
		key.dir = strings.Join(dir, "/")
	}
	if res, ok := f.cache[key]; ok {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := f.r.LoadTree(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load tree %s of /%s: %w", id.Str(), strings.Join(dir, "/"), err)
	}
	var res findResult
	for _, n := range t.Nodes {
		p := append(dir[:len(dir):len(dir)], f.fold(n.Name))
		e := findEntry{node: n, match: matchAny(f.pats, p) && f.inTime(n)}
		if n.Type == repo.NodeDir && n.Subtree != nil && childMayMatch(f.pats, p) {
			if e.sub, err = f.search(ctx, *n.Subtree, p); err != nil {
				return nil, err
			}
		}
		if e.match || e.sub != nil {
			res.entries = append(res.entries, e)
		}
	}
	var out *findResult
	if len(res.entries) > 0 {
		out = &res
	}
	f.cache[key] = out
	return out, nil
}

func (f *Finder) fold(name string) string {
	if f.opts.IgnoreCase {
		return strings.ToLower(name)
	}
	return name
}

func (f *Finder) inTime(n *repo.Node) bool {
	if !f.opts.Oldest.IsZero() && n.ModTime.Before(f.opts.Oldest) {
		return false
	}
	if !f.opts.Newest.IsZero() && n.ModTime.After(f.opts.Newest) {
		return false
	}
	return true
}
