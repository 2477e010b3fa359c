package backup

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
)

var _ Repo = (*repo.Repository)(nil)

func init() { repo.TestUseLowSecurityKDFParameters() }

// newRepo returns a repository in memory with the default parameters.
func newRepo(t testing.TB) (*repo.Repository, *mem.Backend) {
	t.Helper()
	be := mem.New()
	r, err := repo.Init(context.Background(), be, "secret", repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r, be
}

// randomBytes returns n bytes of a seeded generator.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// textBytes returns n bytes of compressible, varied text.
func textBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 9))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while backup systems chunk and deduplicate data blocks in encrypted repositories")
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lookup finds the node at the absolute path p in the snapshot's tree.
func lookup(t testing.TB, r *repo.Repository, sn *repo.Snapshot, p string) *repo.Node {
	t.Helper()
	if sn.Tree == nil {
		t.Fatalf("snapshot without tree")
	}
	id := *sn.Tree
	comps := splitPath(p)
	for i, c := range comps {
		tree, err := r.LoadTree(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		var found *repo.Node
		for _, n := range tree.Nodes {
			if n.Name == c {
				found = n
			}
		}
		if found == nil {
			return nil
		}
		if i == len(comps)-1 {
			return found
		}
		if found.Subtree == nil {
			t.Fatalf("%s: %s has no subtree", p, c)
		}
		id = *found.Subtree
	}
	return nil
}

// children lists the names in the directory node n.
func children(t testing.TB, r *repo.Repository, n *repo.Node) []string {
	t.Helper()
	tree, err := r.LoadTree(context.Background(), *n.Subtree)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range tree.Nodes {
		names = append(names, c.Name)
	}
	return names
}

// content reassembles a file node's bytes from the repository.
func content(t testing.TB, r *repo.Repository, n *repo.Node) []byte {
	t.Helper()
	var out []byte
	for _, c := range n.Content {
		if c.ID == nil {
			out = append(out, make([]byte, c.Len)...)
			continue
		}
		b, err := r.LoadBlob(context.Background(), repo.DataBlob, *c.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(b)) != c.Len {
			t.Fatalf("blob %s has %d bytes, chunk says %d", c.ID.Str(), len(b), c.Len)
		}
		out = append(out, b...)
	}
	return out
}

// reopen opens the repository again from its backend, so tests see only
// what was flushed.
func reopen(t testing.TB, be *mem.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), be, "secret")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func memBackend() *mem.Backend { return mem.New() }
