package repair_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repair"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

var snapTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func data(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1}).Read(b)
	return b
}

// fixture is a repository with one file snapshot and one disk snapshot;
// every file's content is in a pack of its own.
type fixture struct {
	be    backend.Backend
	r     *repo.Repository
	files map[string][]byte // path -> content
	disk  []repo.DiskChunk
	fsnap repo.ID // the file snapshot
	dsnap repo.ID // the disk snapshot
}

func newFixture(t *testing.T, be backend.Backend) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{be: be, r: repotest.NewOn(t, be), files: map[string][]byte{
		"/a.txt":             []byte("alpha\n"),
		"/big.bin":           data(1, 200000),
		"/dir/b.bin":         data(2, 70000),
		"/dir/sub/c.bin":     data(3, 90000),
		"/dir/sub/d.txt":     []byte("delta\n"),
		"/other/e.bin":       data(4, 50000),
		"/other/deep/f.bin":  data(5, 30000),
		"/other/deep/g.txt":  []byte("gamma\n"),
		"/zz-last/empty.txt": {},
	}}
	root := f.saveDir(t, "/")
	sn := &repo.Snapshot{Time: snapTime, Tree: &root, Paths: []string{"/"}, Hostname: "h", Tags: []string{"nightly"}}
	if _, err := f.r.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	f.fsnap = sn.ID

	for i := range 4 {
		d := data(uint64(10+i), 40000)
		id := f.r.BlobID(d)
		if _, _, err := f.r.SaveBlob(ctx, repo.DataBlob, id, d); err != nil {
			t.Fatal(err)
		}
		if err := f.r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		f.disk = append(f.disk, repo.DiskChunk{Offset: uint64(i) * 100000, Length: 40000, ID: id})
	}
	lists, err := f.r.SaveChunkList(ctx, f.disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dsn := &repo.Snapshot{Time: snapTime.Add(time.Hour), Paths: []string{"/dev/vda"}, Hostname: "h",
		Disks: []repo.Disk{{Name: "vda", Source: "/dev/vda", Format: "raw", Size: 1 << 20, SectorSize: 512, ChunkLists: lists, Chunks: 4, DataBytes: 160000}}}
	if _, err := f.r.SaveSnapshot(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	f.dsnap = dsn.ID
	return f
}

// saveDir stores the directory dir of f.files and returns its tree; every
// file's content is flushed to a pack of its own.
func (f *fixture) saveDir(t *testing.T, dir string) repo.ID {
	t.Helper()
	ctx := context.Background()
	names := map[string]bool{}
	for p := range f.files {
		if rest, ok := strings.CutPrefix(p, dir); ok {
			names[strings.SplitN(rest, "/", 2)[0]] = true
		}
	}
	tree := &repo.Tree{}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	}) {
		p := dir + name
		content, isFile := f.files[p]
		if !isFile {
			sub := f.saveDir(t, p+"/")
			tree.Nodes = append(tree.Nodes, &repo.Node{Name: name, Type: repo.NodeDir, Mode: 0o755, ModTime: snapTime, Subtree: &sub})
			continue
		}
		n := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, ModTime: snapTime, Size: uint64(len(content))}
		for off := 0; off < len(content); off += 64000 {
			c := content[off:min(off+64000, len(content))]
			id := f.r.BlobID(c)
			if _, _, err := f.r.SaveBlob(ctx, repo.DataBlob, id, c); err != nil {
				t.Fatal(err)
			}
			n.Content = append(n.Content, repo.Chunk{ID: &id, Len: uint64(len(c))})
		}
		if err := f.r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		tree.Nodes = append(tree.Nodes, n)
	}
	id, err := f.r.SaveTree(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return id
}

// reopen opens the fixture's repository again, as the next process would.
func (f *fixture) reopen(t *testing.T) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), f.be, repotest.Password)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// packOf returns the pack holding the first chunk of a file.
func (f *fixture) packOf(t *testing.T, file string) repo.ID {
	t.Helper()
	id := f.r.BlobID(f.files[file][:min(64000, len(f.files[file]))])
	locs := f.r.LookupBlob(repo.DataBlob, id)
	if len(locs) == 0 {
		t.Fatalf("%s: not in the index", file)
	}
	return locs[0].Pack
}

func packHandle(id repo.ID) backend.Handle {
	return backend.Handle{Type: backend.PackFile, Name: id.String()}
}

// restoreFiles reads every file of a snapshot's tree.
func restoreFiles(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) (map[string][]byte, []string, error) {
	files := map[string][]byte{}
	var dirs []string
	var walk func(id repo.ID, dir string) error
	walk = func(id repo.ID, dir string) error {
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			p := path.Join(dir, n.Name)
			switch n.Type {
			case repo.NodeDir:
				dirs = append(dirs, p)
				if err := walk(*n.Subtree, p); err != nil {
					return err
				}
			case repo.NodeFile:
				var b []byte
				for _, c := range n.Content {
					d, err := r.LoadBlob(ctx, repo.DataBlob, *c.ID, nil)
					if err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
					b = append(b, d...)
				}
				files[p] = b
			}
		}
		return nil
	}
	err := walk(*sn.Tree, "/")
	return files, dirs, err
}

// mustCheck fails unless check finds no errors.
func mustCheck(t *testing.T, r *repo.Repository) *check.Result {
	t.Helper()
	res, err := check.Check(context.Background(), r, check.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("check found errors: %v", res.Problems)
	}
	return res
}

func removeAll(t *testing.T, be backend.Backend, ft backend.FileType) int {
	t.Helper()
	ctx := context.Background()
	var names []string
	if err := be.List(ctx, ft, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := be.Remove(ctx, backend.Handle{Type: ft, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	return len(names)
}

func countFiles(t *testing.T, be backend.Backend, ft backend.FileType) int {
	t.Helper()
	n := 0
	if err := be.List(context.Background(), ft, func(backend.FileInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// rewrite replaces a file of the backend by fn(its content).
func rewrite(t *testing.T, be backend.Backend, h backend.Handle, fn func([]byte)) {
	t.Helper()
	ctx := context.Background()
	b, err := be.Load(ctx, h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	fn(b)
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, h, b); err != nil {
		t.Fatal(err)
	}
}

func TestIndexRebuildsLostIndex(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	old := removeAll(t, f.be, backend.IndexFile)
	r := f.reopen(t)
	sn, err := r.LoadSnapshot(ctx, f.fsnap)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := restoreFiles(ctx, r, sn); !errors.Is(err, repo.ErrBlobNotFound) {
		t.Fatalf("restore without an index: %v, want blob not found", err)
	}

	res, err := repair.Index(ctx, r, repair.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packs := countFiles(t, f.be, backend.PackFile)
	if res.PacksRead != packs || res.PacksAdded != packs || len(res.PacksDamaged) != 0 || res.IndexFiles.Written != 1 || res.IndexFiles.Removed != 0 {
		t.Errorf("result %+v; want %d packs read and added, one index file written (%d were removed)", res, packs, old)
	}
	if want := f.r.BlobCount(repo.DataBlob) + f.r.BlobCount(repo.TreeBlob); res.BlobsIndexed != want {
		t.Errorf("indexed %d blobs, want %d", res.BlobsIndexed, want)
	}

	r = f.reopen(t)
	got, _, err := restoreFiles(ctx, r, sn)
	if err != nil {
		t.Fatalf("restore after repair: %v", err)
	}
	for p, want := range f.files {
		if !bytes.Equal(got[p], want) {
			t.Errorf("%s: restored %d bytes, want %d", p, len(got[p]), len(want))
		}
	}
	mustCheck(t, r)
}

func TestIndexReplacesEveryIndexFile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	before := countFiles(t, f.be, backend.IndexFile)
	if before < 5 {
		t.Fatalf("fixture has %d index files; want several", before)
	}
	// A damaged index file is replaced too.
	var first string
	_ = f.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		if first == "" {
			first = fi.Name
		}
		return nil
	})
	rewrite(t, f.be, backend.Handle{Type: backend.IndexFile, Name: first}, func(b []byte) { b[len(b)/2] ^= 1 })
	r := f.reopen(t)

	dry, err := repair.Index(ctx, r, repair.IndexOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.IndexFiles.Old != before || dry.IndexFiles.Damaged != 1 || dry.IndexFiles.Written != 1 || dry.IndexFiles.Removed != 0 {
		t.Errorf("dry run: %+v", dry.IndexFiles)
	}
	if n := countFiles(t, f.be, backend.IndexFile); n != before {
		t.Fatalf("dry run changed the index files: %d, want %d", n, before)
	}

	res, err := repair.Index(ctx, r, repair.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.IndexFiles.Removed != before {
		t.Errorf("removed %d index files, want %d", res.IndexFiles.Removed, before)
	}
	if n := countFiles(t, f.be, backend.IndexFile); n != 1 {
		t.Errorf("%d index files after repair, want 1", n)
	}
	mustCheck(t, f.reopen(t))
}

func TestIndexDamagedHeader(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	pack := f.packOf(t, "/dir/b.bin")
	// The last bytes of the sealed header: the header does not unseal.
	rewrite(t, f.be, packHandle(pack), func(b []byte) { b[len(b)-10] ^= 0xff })

	res, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.PacksDamaged) != 1 || res.PacksDamaged[0].ID != pack {
		t.Fatalf("damaged packs %+v, want %s", res.PacksDamaged, pack.Str())
	}
	d := res.PacksDamaged[0]
	if !strings.Contains(d.Reason, "header") || d.KeptBlobs != 2 {
		t.Errorf("damaged pack %+v: want a header error and the 2 blobs of the old index kept", d)
	}
	if _, err := f.be.Stat(ctx, packHandle(pack)); err != nil {
		t.Errorf("the damaged pack was not left alone: %v", err)
	}
	// Its blobs are intact and stay usable.
	r := f.reopen(t)
	sn, _ := r.LoadSnapshot(ctx, f.fsnap)
	got, _, err := restoreFiles(ctx, r, sn)
	if err != nil || !bytes.Equal(got["/dir/b.bin"], f.files["/dir/b.bin"]) {
		t.Errorf("restore after repair: %v", err)
	}

	// A damaged pack no index lists is reported and not indexed.
	removeAll(t, f.be, backend.IndexFile)
	res, err = repair.Index(ctx, f.reopen(t), repair.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.PacksDamaged) != 1 || res.PacksDamaged[0].KeptBlobs != 0 {
		t.Errorf("damaged packs %+v, want one with no blobs kept", res.PacksDamaged)
	}
	if len(f.reopen(t).LookupBlob(repo.DataBlob, *firstChunk(t, f, "/dir/b.bin"))) != 0 {
		t.Error("a blob of the unreadable pack is indexed")
	}
}

func firstChunk(t *testing.T, f *fixture, file string) *repo.ID {
	t.Helper()
	id := f.r.BlobID(f.files[file][:min(64000, len(f.files[file]))])
	return &id
}

// TestRepairDeletedPack is the whole recovery: a pack is lost, repair index
// drops its entries, repair snapshots writes a copy without the file that
// used it, and check accepts the repository once the original is forgotten.
func TestRepairDeletedPack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	lost := f.packOf(t, "/dir/sub/c.bin")
	if err := f.be.Remove(ctx, packHandle(lost)); err != nil {
		t.Fatal(err)
	}
	r := f.reopen(t)
	if _, err := repair.Snapshots(ctx, r, repair.SnapshotOptions{Now: snapTime}); !errors.Is(err, repair.ErrIndexNeedsRepair) {
		t.Fatalf("repair snapshots before repair index: %v, want ErrIndexNeedsRepair", err)
	}
	ires, err := repair.Index(ctx, r, repair.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ires.PacksMissing) != 1 || ires.PacksMissing[0].ID != lost || ires.PacksMissing[0].Blobs != 2 {
		t.Errorf("missing packs %+v, want %s with 2 blobs", ires.PacksMissing, lost.Str())
	}

	r = f.reopen(t)
	dry, err := repair.Snapshots(ctx, r, repair.SnapshotOptions{DryRun: true, Now: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Checked != 2 || dry.Intact != 1 || len(dry.Repaired) != 1 || dry.Repaired[0].Repaired != nil {
		t.Fatalf("dry run: %+v", dry)
	}
	want := []repair.Change{{Path: "/dir/sub/c.bin", Action: repair.RemovedFile, Reason: "2 of 2 chunks missing"}}
	if !slices.Equal(dry.Repaired[0].Changes, want) {
		t.Errorf("changes %v, want %v", dry.Repaired[0].Changes, want)
	}
	if n := countFiles(t, f.be, backend.SnapshotFile); n != 2 {
		t.Fatalf("dry run wrote snapshots: %d", n)
	}

	res, err := repair.Snapshots(ctx, r, repair.SnapshotOptions{Now: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Repaired[0]
	if res.Written != 1 || rep.Repaired == nil || rep.Forgotten || res.Forgotten != 0 {
		t.Fatalf("result %+v", res)
	}
	r = f.reopen(t)
	sn, err := r.LoadSnapshot(ctx, *rep.Repaired)
	if err != nil {
		t.Fatal(err)
	}
	if sn.Original == nil || *sn.Original != f.fsnap || !slices.Equal(sn.Tags, []string{"nightly", "repaired"}) || !sn.Time.Equal(snapTime) || !sn.Incomplete {
		t.Errorf("repaired snapshot %+v", sn)
	}
	if len(sn.Warnings) != 1 || !strings.Contains(sn.Warnings[0], "/dir/sub/c.bin") {
		t.Errorf("warnings %q", sn.Warnings)
	}
	got, _, err := restoreFiles(ctx, r, sn)
	if err != nil {
		t.Fatalf("restore the repaired snapshot: %v", err)
	}
	for p, content := range f.files {
		if p == "/dir/sub/c.bin" {
			if _, ok := got[p]; ok {
				t.Errorf("%s is still in the repaired snapshot", p)
			}
			continue
		}
		if !bytes.Equal(got[p], content) {
			t.Errorf("%s: restored %d bytes, want %d", p, len(got[p]), len(content))
		}
	}

	// The original still references the lost data; an interrupted run
	// that wrote the copy is finished by forgetting it, not copying again.
	cres, err := check.Check(ctx, r, check.Options{})
	if err != nil || cres.OK() {
		t.Fatalf("check with the damaged original: %v, %v", err, cres.Problems)
	}
	res, err = repair.Snapshots(ctx, r, repair.SnapshotOptions{Forget: true, Now: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || res.Forgotten != 1 || !res.Repaired[0].Existing || *res.Repaired[0].Repaired != *rep.Repaired {
		t.Errorf("second run: %+v", res)
	}
	mustCheck(t, f.reopen(t))
}

func TestRepairMissingTreeAndDisk(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	// Every tree is in the last tree pack: lose a tree by rebuilding the
	// index without it, as repair index --read-all-packs does with a
	// damaged blob.
	r := f.r
	root, _ := r.LoadSnapshot(ctx, f.fsnap)
	top, _ := r.LoadTree(ctx, *root.Tree)
	var other repo.ID
	for _, n := range top.Nodes {
		if n.Name == "other" {
			other = *n.Subtree
		}
	}
	treePack := r.LookupBlob(repo.TreeBlob, other)[0].Pack
	rewrite(t, f.be, packHandle(treePack), func(b []byte) {
		pb := r.LookupBlob(repo.TreeBlob, other)[0]
		b[pb.Offset+pb.Length/2] ^= 1
	})
	// And a chunk of the disk.
	diskPack := r.LookupBlob(repo.DataBlob, f.disk[2].ID)[0].Pack
	if err := f.be.Remove(ctx, packHandle(diskPack)); err != nil {
		t.Fatal(err)
	}

	ires, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{ReadAllPacks: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ires.BlobsDamaged) != 1 || ires.BlobsDamaged[0].ID != other || len(ires.PacksMissing) != 1 {
		t.Fatalf("damaged blobs %+v, missing packs %+v", ires.BlobsDamaged, ires.PacksMissing)
	}

	r = f.reopen(t)
	res, err := repair.Snapshots(ctx, r, repair.SnapshotOptions{Forget: true, Now: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Repaired) != 2 || res.Written != 1 || res.Forgotten != 2 {
		t.Fatalf("result %+v", res)
	}
	files := res.Repaired[0]
	if len(files.Changes) != 1 || files.Changes[0].Path != "/other" || files.Changes[0].Action != repair.EmptiedDir {
		t.Errorf("file snapshot changes %v", files.Changes)
	}
	disk := res.Repaired[1]
	wantDisk := repair.Change{Path: "disk:vda", Action: repair.RemovedDisk, Reason: "1 of 4 chunks missing, the first at offset 200000"}
	if len(disk.Changes) != 1 || disk.Changes[0] != wantDisk || !disk.Empty || disk.Repaired != nil {
		t.Errorf("disk snapshot %+v, want %v and nothing left", disk, wantDisk)
	}

	r = f.reopen(t)
	sn, err := r.LoadSnapshot(ctx, *files.Repaired)
	if err != nil {
		t.Fatal(err)
	}
	got, dirs, err := restoreFiles(ctx, r, sn)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirs, "/other") || got["/other/e.bin"] != nil || !bytes.Equal(got["/dir/b.bin"], f.files["/dir/b.bin"]) {
		t.Errorf("restored %d files, dirs %v", len(got), dirs)
	}
	// The damaged blob is still in its pack, which --read-data reports;
	// the structure is sound, and prune removes the pack.
	if cres, err := check.Check(ctx, r, check.Options{}); err != nil || !cres.OK() {
		t.Fatalf("check: %v %v", err, cres.Problems)
	}
	if n := countFiles(t, f.be, backend.SnapshotFile); n != 1 {
		t.Errorf("%d snapshots left, want the repaired copy only", n)
	}
	if _, _, err := prune.Run(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused}); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f.reopen(t))
}

func TestRepairKeepsProtectedOriginal(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	if _, err := f.r.SaveProtection(ctx, &repo.Protection{Snapshot: f.fsnap, Time: snapTime}); err != nil {
		t.Fatal(err)
	}
	if err := f.be.Remove(ctx, packHandle(f.packOf(t, "/a.txt"))); err != nil {
		t.Fatal(err)
	}
	if _, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := repair.Snapshots(ctx, f.reopen(t), repair.SnapshotOptions{IDs: []repo.ID{f.fsnap}, Forget: true, Now: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked != 1 || res.Written != 1 || res.Forgotten != 0 || res.Repaired[0].Kept != "protected" {
		t.Errorf("result %+v", res)
	}
	if _, err := f.reopen(t).LoadSnapshot(ctx, f.fsnap); err != nil {
		t.Errorf("protected original removed: %v", err)
	}
}

// TestIndexInterrupted stops repair index at every write and removal (as a
// crash would) and checks that the repository stays usable and a new run
// finishes the repair.
func TestIndexInterrupted(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		rule faulty.Rule
	}{
		{"before the new index", faulty.Rule{Method: faulty.Save, Type: backend.IndexFile}},
		{"new index stored, error returned", faulty.Rule{Method: faulty.Save, Type: backend.IndexFile, Persist: true}},
		{"before the first removal", faulty.Rule{Method: faulty.Remove, Type: backend.IndexFile}},
		{"after 1 removal", faulty.Rule{Method: faulty.Remove, Type: backend.IndexFile, After: 1}},
		{"after 4 removals", faulty.Rule{Method: faulty.Remove, Type: backend.IndexFile, After: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := faulty.New(mem.New())
			f := newFixture(t, fb)
			// Some damage to repair: an index file lost, so that some
			// packs are indexed by no file.
			var first string
			_ = fb.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
				if first == "" {
					first = fi.Name
				}
				return nil
			})
			if err := fb.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: first}); err != nil {
				t.Fatal(err)
			}
			r := f.reopen(t)
			fb.Add(tc.rule)
			if _, err := repair.Index(ctx, r, repair.IndexOptions{}); !errors.Is(err, faulty.ErrInjected) {
				t.Fatalf("interrupted repair: %v", err)
			}
			fb.Clear()
			// No new damage: check sees no more than before the repair
			// (unindexed packs are warnings).
			res, err := check.Check(ctx, f.reopen(t), check.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range res.Problems {
				if p.Severity == check.Error && p.Kind != check.BlobMissing {
					t.Errorf("after the interruption: %v", p)
				}
			}
			if _, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{}); err != nil {
				t.Fatal(err)
			}
			mustCheck(t, f.reopen(t))
			if n := countFiles(t, fb, backend.IndexFile); n != 1 {
				t.Errorf("%d index files after the second run, want 1", n)
			}
		})
	}
}

// TestIndexSalvage damages one blob of a pack and the header of another:
// with ReadAllPacks the intact blobs of both move to new packs, so that
// after repair snapshots and prune, check --read-data passes.
func TestIndexSalvage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	big := f.packOf(t, "/big.bin")
	pb := f.r.LookupBlob(repo.DataBlob, *firstChunk(t, f, "/big.bin"))[0]
	rewrite(t, f.be, packHandle(big), func(b []byte) { b[pb.Offset+pb.Length/2] ^= 1 })
	hdr := f.packOf(t, "/dir/b.bin")
	rewrite(t, f.be, packHandle(hdr), func(b []byte) { b[len(b)-10] ^= 0xff })

	dry, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{ReadAllPacks: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.BlobsSalvaged != 5 || dry.PacksWritten != 0 {
		t.Errorf("dry run: %d blobs to salvage, %d packs written; want 5 and 0", dry.BlobsSalvaged, dry.PacksWritten)
	}
	packs := countFiles(t, f.be, backend.PackFile)
	res, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{ReadAllPacks: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BlobsDamaged) != 1 || res.BlobsDamaged[0].Pack != big || res.BlobsSalvaged != 5 || res.PacksWritten != 2 {
		t.Fatalf("damaged %+v, salvaged %d blobs into %d packs", res.BlobsDamaged, res.BlobsSalvaged, res.PacksWritten)
	}
	if len(res.PacksDamaged) != 1 || res.PacksDamaged[0].ID != hdr || res.PacksDamaged[0].SalvagedBlobs != 2 {
		t.Errorf("damaged packs %+v", res.PacksDamaged)
	}
	if n := countFiles(t, f.be, backend.PackFile); n != packs+2 {
		t.Errorf("%d packs, want %d: damaged packs are not deleted", n, packs+2)
	}

	// Again: the copies exist, nothing is copied twice.
	again, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{ReadAllPacks: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.PacksWritten != 0 || again.BlobsSalvaged != 3 || len(again.BlobsDamaged) != 1 {
		t.Errorf("second run: %d packs written, %d blobs salvaged, damaged %+v", again.PacksWritten, again.BlobsSalvaged, again.BlobsDamaged)
	}

	r := f.reopen(t)
	sres, err := repair.Snapshots(ctx, r, repair.SnapshotOptions{Forget: true, Now: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(sres.Repaired) != 1 || len(sres.Repaired[0].Changes) != 1 || sres.Repaired[0].Changes[0].Path != "/big.bin" {
		t.Fatalf("repaired %+v", sres.Repaired)
	}
	if _, _, err := prune.Run(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused}); err != nil {
		t.Fatal(err)
	}
	r = f.reopen(t)
	mustCheck(t, r)
	sn, err := r.LoadSnapshot(ctx, *sres.Repaired[0].Repaired)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := restoreFiles(ctx, r, sn)
	if err != nil || !bytes.Equal(got["/dir/b.bin"], f.files["/dir/b.bin"]) || got["/big.bin"] != nil {
		t.Errorf("restore: %v", err)
	}
}

// TestRepairDamagedCopyOnce damages a repaired copy: repair copies it once
// (the new copy names the first original), and later runs find that copy
// rather than writing another one each time.
func TestRepairDamagedCopyOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	lose := func(file string) {
		t.Helper()
		if err := f.be.Remove(ctx, packHandle(f.packOf(t, file))); err != nil {
			t.Fatal(err)
		}
		if _, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(forget bool) *repair.SnapshotResult {
		t.Helper()
		res, err := repair.Snapshots(ctx, f.reopen(t), repair.SnapshotOptions{Forget: forget, Now: snapTime})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	lose("/dir/sub/c.bin")
	if res := run(false); res.Written != 1 {
		t.Fatalf("first repair: %+v", res)
	}
	// The copy is damaged too now: it is copied once.
	lose("/other/e.bin")
	res := run(false)
	if res.Written != 1 || len(res.Repaired) != 2 {
		t.Fatalf("repair of the damaged copy: %+v", res)
	}
	var second repo.ID
	for _, rep := range res.Repaired {
		if !rep.Existing {
			second = *rep.Repaired
		}
	}
	for range 2 {
		res = run(false)
		if res.Written != 0 || len(res.Repaired) != 2 {
			t.Fatalf("repair run again: %+v", res)
		}
		for _, rep := range res.Repaired {
			if !rep.Existing || *rep.Repaired != second {
				t.Errorf("repair run again: %+v, want the existing copy %s", rep, second.Str())
			}
		}
	}
	if n := countFiles(t, f.be, backend.SnapshotFile); n != 4 {
		t.Errorf("%d snapshots, want 4 (disk, original and two copies)", n)
	}
	res = run(true)
	if res.Written != 0 || res.Forgotten != 2 {
		t.Fatalf("repair with forget: %+v", res)
	}
	r := f.reopen(t)
	sn, err := r.LoadSnapshot(ctx, second)
	if err != nil || sn.Original == nil || *sn.Original != f.fsnap || len(sn.Warnings) != 2 {
		t.Fatalf("the copy left: %+v, %v", sn, err)
	}
	res2, err := check.Check(ctx, r, check.Options{})
	if err != nil || !res2.OK() {
		t.Fatalf("check: %v %v", err, res2.Problems)
	}
}

// TestRepairRetaggedCopyIsNotARepair: a re-tagged copy (bunker tag, killed
// before it removed the old snapshot) names its original too, but it is not
// a repaired copy: repair writes a repaired copy of each.
func TestRepairRetaggedCopyIsNotARepair(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, mem.New())
	r := f.reopen(t)
	old, err := r.LoadSnapshot(ctx, f.fsnap)
	if err != nil {
		t.Fatal(err)
	}
	retagged := *old
	retagged.Tags = []string{"keep"}
	orig := f.fsnap
	retagged.Original = &orig
	if _, err := r.SaveSnapshot(ctx, &retagged); err != nil {
		t.Fatal(err)
	}
	lost := f.packOf(t, "/dir/sub/c.bin")
	if err := f.be.Remove(ctx, packHandle(lost)); err != nil {
		t.Fatal(err)
	}
	if _, err := repair.Index(ctx, f.reopen(t), repair.IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := repair.Snapshots(ctx, f.reopen(t), repair.SnapshotOptions{Now: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 2 || len(res.Repaired) != 2 {
		t.Fatalf("wrote %d repaired copies of %d damaged snapshots, want 2 of 2: %+v", res.Written, len(res.Repaired), res)
	}
	for _, rp := range res.Repaired {
		if rp.Existing {
			t.Errorf("%+v taken for an existing repaired copy", rp)
		}
	}
}
