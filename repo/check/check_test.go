package check_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/repo/backend/local"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fixture writes a snapshot with a small file tree and a disk into r.
// It returns the data blob of /sub/big and of the disk's first chunk.
func fixture(t *testing.T, r *repo.Repository, seed uint64) (fileBlob, diskBlob repo.ID) {
	t.Helper()
	ctx := context.Background()
	save := func(d []byte) repo.ID {
		id := r.BlobID(d)
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, d); err != nil {
			t.Fatal(err)
		}
		return id
	}
	mt := time.Unix(1700000000, 0).UTC()
	b1 := save(data(seed, 3000))
	b2 := save(data(seed+1, 200000))
	sub, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{
		{Name: "big", Type: repo.NodeFile, ModTime: mt, Size: 200000, Content: []repo.Chunk{{ID: &b2, Len: 200000}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{
		{Name: "a", Type: repo.NodeFile, ModTime: mt, Size: 3000, Content: []repo.Chunk{{ID: &b1, Len: 3000}}},
		{Name: "sub", Type: repo.NodeDir, ModTime: mt, Subtree: &sub},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d1 := save(data(seed+2, 65536))
	d2 := save(data(seed+3, 65536))
	chunks := []repo.DiskChunk{{Offset: 0, Length: 65536, ID: d1}, {Offset: 1 << 20, Length: 65536, ID: d2}}
	lists, err := r.SaveChunkList(ctx, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &repo.Snapshot{Time: mt.Add(time.Duration(seed) * time.Minute), Tree: &root, Paths: []string{"/src"}, Hostname: "h",
		Disks: []repo.Disk{{Name: "sda", Size: 2 << 20, SectorSize: 512, ChunkLists: lists, Chunks: 2, DataBytes: 131072}}}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	return b2, d1
}

func mustCheck(t *testing.T, r *repo.Repository, opts check.Options) *check.Result {
	t.Helper()
	res, err := check.Check(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return res
}

func TestCleanRepository(t *testing.T) {
	r := repotest.New(t)
	fixture(t, r, 1)
	fixture(t, r, 2)
	res := mustCheck(t, repotest.Reopen(t, r), check.Options{ReadData: true})
	if len(res.Problems) != 0 {
		t.Fatalf("problems in a clean repository: %v", res.Problems)
	}
	if res.Snapshots != 2 || res.PacksRead != res.Packs || res.Packs == 0 || res.Blobs != 13 /* 7 blobs per fixture, one shared chunk */ {
		t.Fatalf("unexpected figures: %+v", res)
	}
}

func packPath(dir string, id repo.ID) string {
	s := id.String()
	return filepath.Join(dir, "data", s[:2], s)
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedBlobTracedToFiles(t *testing.T) {
	r, dir := repotest.NewLocal(t)
	fileBlob, diskBlob := fixture(t, r, 1)
	for _, target := range []repo.ID{fileBlob, diskBlob} {
		pb := r.LookupBlob(repo.DataBlob, target)[0]
		flipByte(t, packPath(dir, pb.Pack), int64(pb.Offset)+100)
	}
	r2 := repotest.Reopen(t, r)
	res := mustCheck(t, r2, check.Options{})
	if !res.OK() {
		t.Fatalf("structure check without reading data failed: %v", res.Problems)
	}
	res = mustCheck(t, r2, check.Options{ReadData: true})
	var damaged []repo.ID
	for _, p := range res.Problems {
		if p.Kind == check.BlobDamaged {
			damaged = append(damaged, p.Blobs...)
			if p.Pack == nil || !strings.Contains(p.Message, p.Pack.Str()) {
				t.Errorf("problem does not name the pack: %v", p)
			}
		}
	}
	if len(damaged) != 2 {
		t.Fatalf("damaged blobs %v, problems %v", damaged, res.Problems)
	}
	paths := map[string]bool{}
	for _, u := range res.Affected {
		paths[u.Path] = true
	}
	if !paths["/sub/big"] || !paths["disk sda (1 damaged chunks, first at offset 0)"] || len(paths) != 2 {
		t.Fatalf("affected: %+v", res.Affected)
	}
	// LoadBlob names pack and blob as well.
	_, err := r2.LoadBlob(context.Background(), repo.DataBlob, fileBlob, nil)
	var be *repo.BlobError
	if !errors.As(err, &be) || be.Pack.IsNull() || !strings.Contains(err.Error(), fileBlob.Str()) {
		t.Fatalf("load damaged blob: %v", err)
	}
}

func TestMissingAndUnreferencedPacks(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.NewLocal(t)
	fileBlob, _ := fixture(t, r, 1)
	pb := r.LookupBlob(repo.DataBlob, fileBlob)[0]
	if err := os.Remove(packPath(dir, pb.Pack)); err != nil {
		t.Fatal(err)
	}
	// A pack written without an index, as a crash leaves it.
	old := repo.PackSize
	repo.PackSize = 1024
	orphan := data(9, 5000)
	_, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(orphan), orphan)
	repo.PackSize = old
	if err != nil {
		t.Fatal(err)
	}
	res := mustCheck(t, repotest.Reopen(t, r), check.Options{})
	kinds := map[check.Kind]int{}
	for _, p := range res.Problems {
		kinds[p.Kind]++
		if p.Kind == check.UnreferencedPack && !strings.Contains(p.Message, "(left by an interrupted backup or prune; harmless, removed by prune)") {
			t.Errorf("unreferenced pack: %s", p.Message)
		}
	}
	if kinds[check.UnreferencedPack] != 1 {
		t.Errorf("unreferenced pack not reported: %v", res.Problems)
	}
	if kinds[check.MissingPack] != 1 {
		t.Errorf("missing pack not reported: %v", res.Problems)
	}
	found := false
	for _, u := range res.Affected {
		found = found || u.Path == "/sub/big"
	}
	if !found {
		t.Errorf("file using the missing pack not reported: %+v", res.Affected)
	}
}

func TestSubset(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{{"1/3", true}, {"3/3", true}, {"0/3", false}, {"4/3", false}, {"10%", true}, {"100%", true}, {"0%", false}, {"x", false}, {"1/0", false}} {
		_, err := check.ParseSubset(tc.s)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSubset(%q): %v", tc.s, err)
		}
	}
	old := repo.PackSize
	repo.PackSize = 8 << 10
	defer func() { repo.PackSize = old }()
	r := repotest.New(t)
	fixture(t, r, 1)
	total := 0
	for n := 1; n <= 3; n++ {
		res := mustCheck(t, r, check.Options{ReadDataSubset: fmt.Sprintf("%d/3", n)})
		total += res.PacksRead
	}
	res := mustCheck(t, r, check.Options{ReadDataSubset: "50%"})
	if total != res.Packs || res.PacksRead != (res.Packs+1)/2 {
		t.Fatalf("subsets read %d of %d packs; 50%% read %d", total, res.Packs, res.PacksRead)
	}
}

// TestTamper flips one bit in every file of a repository, one at a time, and
// requires that opening or checking (with --read-data) the repository fails.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.NewLocal(t)
	fixture(t, r, 1)
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 6 {
		t.Fatalf("only %d files", len(files))
	}
	for _, f := range files {
		orig, _ := os.ReadFile(f)
		for _, off := range []int64{0, int64(len(orig)) / 2, -1} {
			flipByte(t, f, off)
			r2, err := repo.Open(ctx, local.New(dir), repotest.Password)
			detected := err != nil
			if err == nil {
				res := mustCheck(t, r2, check.Options{ReadData: true})
				detected = !res.OK()
			}
			if !detected {
				t.Errorf("flipped bit at %d in %s not detected", off, strings.TrimPrefix(f, dir))
			}
			if err := os.WriteFile(f, orig, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCrashOrdering fails the backend at every successive write during a
// backup-like sequence (packs, index, snapshot) and requires that the
// repository left behind passes check, and that a retry completes.
func TestCrashOrdering(t *testing.T) {
	ctx := context.Background()
	old := repo.PackSize
	repo.PackSize = 16 << 10
	defer func() { repo.PackSize = old }()
	for failAt := 0; ; failAt++ {
		inner := mem.New()
		base := repotest.NewOn(t, inner)
		fixture(t, base, 1)
		fb := faulty.New(inner)
		r, err := repo.Open(ctx, fb, repotest.Password)
		if err != nil {
			t.Fatal(err)
		}
		fb.Add(faulty.Rule{Method: faulty.Save, After: failAt, Times: 1, Persist: failAt%2 == 1})
		err = backupSome(ctx, r, 2)
		if err == nil {
			if failAt < 3 {
				t.Fatalf("failAt %d: no fault was hit", failAt)
			}
			break
		}
		if !errors.Is(err, faulty.ErrInjected) {
			t.Fatalf("failAt %d: unexpected error %v", failAt, err)
		}
		fb.Clear()
		r2 := repotest.Reopen(t, r)
		res := mustCheck(t, r2, check.Options{ReadData: true})
		if !res.OK() {
			t.Fatalf("failAt %d: check after crash: %v", failAt, res.Problems)
		}
		if err := backupSome(ctx, r2, 2); err != nil {
			t.Fatalf("failAt %d: retry: %v", failAt, err)
		}
		res = mustCheck(t, repotest.Reopen(t, r2), check.Options{ReadData: true})
		if !res.OK() {
			t.Fatalf("failAt %d: check after retry: %v", failAt, res.Problems)
		}
	}
}

// backupSome stores blobs, a tree and a snapshot in the order a backup does.
func backupSome(ctx context.Context, r *repo.Repository, seed uint64) error {
	var content []repo.Chunk
	for i := range 12 {
		d := data(seed*100+uint64(i), 7000)
		id := r.BlobID(d)
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, d); err != nil {
			return err
		}
		content = append(content, repo.Chunk{ID: &id, Len: 7000})
	}
	root, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{{Name: "f", Type: repo.NodeFile, Size: 84000, Content: content}}})
	if err != nil {
		return err
	}
	if err := r.Flush(ctx); err != nil {
		return err
	}
	_, err = r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Tree: &root, Hostname: "h"})
	return err
}
