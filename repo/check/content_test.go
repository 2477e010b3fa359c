package check_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

// A tree whose file sizes do not match the content it lists is damaged
// even when every blob it names is intact.
func TestFileContentLengths(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	blob := data(7, 5000)
	id := r.BlobID(blob)
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, blob); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1700000000, 0).UTC()
	root, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{
		{Name: "ok", Type: repo.NodeFile, ModTime: mt, Size: 9096, Content: []repo.Chunk{{ID: &id, Len: 5000}, {Len: 4096}}},
		{Name: "short", Type: repo.NodeFile, ModTime: mt, Size: 9000, Content: []repo.Chunk{{ID: &id, Len: 5000}}},
		{Name: "wronglen", Type: repo.NodeFile, ModTime: mt, Size: 4000, Content: []repo.Chunk{{ID: &id, Len: 4000}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: mt, Tree: &root, Paths: []string{"/x"}, Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	res := mustCheck(t, r, check.Options{})
	var msgs []string
	for _, p := range res.Problems {
		if p.Kind == check.TreeDamaged {
			msgs = append(msgs, p.Message)
		}
	}
	all := strings.Join(msgs, "\n")
	if len(msgs) != 2 || !strings.Contains(all, `"short"`) || !strings.Contains(all, "covers 5000 bytes, its size is 9000") ||
		!strings.Contains(all, `"wronglen"`) || !strings.Contains(all, "is 5000 bytes long, the tree says 4000") || strings.Contains(all, `"ok"`) {
		t.Fatalf("problems:\n%s", all)
	}
}
