package repo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/local"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func compressible(seed uint64, n int) []byte {
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "disk ", "sector ", "\x00\x00\x00\x00"}
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.NewLocal(t)
	cfg := r.Config()
	if cfg.Version != 1 || cfg.Compression != "auto" || cfg.FileChunker != repo.DefaultFileChunker {
		t.Fatalf("unexpected config %+v", cfg)
	}
	if _, err := repo.Init(ctx, local.New(dir), "x", repo.InitOptions{}); !errors.Is(err, repo.ErrAlreadyExists) {
		t.Fatalf("second init: got %v, want ErrAlreadyExists", err)
	}
	r2, err := repo.Open(ctx, local.New(dir), repotest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Config() != cfg {
		t.Fatalf("config after open %+v, want %+v", r2.Config(), cfg)
	}
	if _, err := repo.Open(ctx, local.New(dir), "wrong"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("wrong password: got %v", err)
	}
	if _, err := repo.Open(ctx, local.New(t.TempDir()+"/missing"), "x"); !errors.Is(err, repo.ErrNoRepository) {
		t.Fatalf("missing repository: got %v", err)
	}
}

func TestSaveLoadBlob(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	var ids []repo.ID
	var datas [][]byte
	for i := range 40 {
		var d []byte
		switch i % 3 {
		case 0:
			d = randomBytes(uint64(i), 1000+i*997)
		case 1:
			d = compressible(uint64(i), 5000+i*13)
		default:
			d = []byte(fmt.Sprintf("small %d", i))
		}
		id := r.BlobID(d)
		added, stored, err := r.SaveBlob(ctx, repo.DataBlob, id, d)
		if err != nil || !added || stored <= 0 {
			t.Fatalf("save blob %d: added=%v stored=%d err=%v", i, added, stored, err)
		}
		if added, _, _ := r.SaveBlob(ctx, repo.DataBlob, id, d); added {
			t.Fatalf("blob %d added twice", i)
		}
		ids = append(ids, id)
		datas = append(datas, d)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rr := range []*repo.Repository{r, repotest.Reopen(t, r)} {
		for i, id := range ids {
			if !rr.HasBlob(repo.DataBlob, id) || rr.HasBlob(repo.TreeBlob, id) {
				t.Fatalf("blob %d: HasBlob wrong", i)
			}
			got, err := rr.LoadBlob(ctx, repo.DataBlob, id, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, datas[i]) {
				t.Fatalf("blob %d: content differs", i)
			}
		}
	}
	if _, err := r.LoadBlob(ctx, repo.DataBlob, repo.ID{1}, nil); !errors.Is(err, repo.ErrBlobNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
}

func TestCompressionChoice(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	inc := randomBytes(7, 1<<20)
	com := compressible(7, 1<<20)
	_, s1, _ := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(inc), inc)
	_, s2, _ := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(com), com)
	if s1 != len(inc)+40 {
		t.Errorf("incompressible blob stored in %d bytes, want %d", s1, len(inc)+40)
	}
	if s2 > len(com)/4 {
		t.Errorf("compressible blob stored in %d bytes, want compression", s2)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = r.EachBlob(func(pb repo.PackedBlob) error {
		n++
		if pb.Compressed != (pb.ID == r.BlobID(com)) {
			t.Errorf("blob %s: compressed=%v", pb.ID.Str(), pb.Compressed)
		}
		return nil
	})
	if n != 2 {
		t.Fatalf("index has %d blobs, want 2", n)
	}
}

// TestCompressionModes: "max" stores text in fewer bytes than "auto",
// "off" stores it plain; a per-run choice overrides the config without
// changing it, and SetCompression changes the config (read back on open).
func TestCompressionModes(t *testing.T) {
	ctx := context.Background()
	var text []byte
	for i := 0; len(text) < 1<<20; i++ {
		text = fmt.Appendf(text, "line %d: the quick brown fox %d jumps over %x lazy dogs\n", i, i*7919%1000, i*31)
	}
	stored := func(mode string) int {
		r := repotest.New(t)
		if err := r.UseCompression(mode); err != nil {
			t.Fatal(err)
		}
		_, n, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(text), text)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := r.LoadBlob(ctx, repo.DataBlob, r.BlobID(text), nil); err != nil || !bytes.Equal(got, text) {
			t.Fatalf("%s: load back: %v", mode, err)
		}
		return n
	}
	auto, max, off := stored("auto"), stored("max"), stored("off")
	if off != len(text)+40 || auto >= off || max >= auto {
		t.Errorf("stored bytes: off %d, auto %d, max %d: want off > auto > max", off, auto, max)
	}
	r := repotest.New(t)
	if err := r.UseCompression("fast"); err == nil {
		t.Error("unknown mode accepted")
	}
	if err := r.SetCompression(ctx, "max"); err != nil {
		t.Fatal(err)
	}
	if got := repotest.Reopen(t, r).Config().Compression; got != "max" {
		t.Errorf("config after reopen: %q", got)
	}
	if err := r.SetCompression(ctx, "zip"); err == nil {
		t.Error("unknown mode saved")
	}
}

func TestConcurrentSaveBlob(t *testing.T) {
	ctx := context.Background()
	old := repo.PackSize
	repo.PackSize = 256 << 10
	defer func() { repo.PackSize = old }()
	r := repotest.New(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				// Every goroutine saves the same blobs: each must be added once.
				d := randomBytes(uint64(i), 20000)
				if _, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(d), d); err != nil {
					t.Errorf("goroutine %d: %v", g, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := repotest.Reopen(t, r)
	n := 0
	_ = r2.EachBlob(func(repo.PackedBlob) error { n++; return nil })
	if n != 50 {
		t.Fatalf("index has %d blob locations, want 50", n)
	}
	if len(r2.IndexedPacks()) < 3 {
		t.Fatalf("want several packs, got %d", len(r2.IndexedPacks()))
	}
}

func TestTreeRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	sub := repo.ID{9}
	blob := repo.ID{3}
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	tree := &repo.Tree{Nodes: []*repo.Node{
		{Name: "a\nb", Type: repo.NodeFile, Mode: 0o644, ModTime: mt, Size: 5, Content: []repo.Chunk{{ID: &blob, Len: 3}, {Len: 2}}},
		{Name: "dir", Type: repo.NodeDir, Mode: 0o755 | 1<<31, ModTime: mt, Subtree: &sub},
		{Name: "link\xff\xfe", Type: repo.NodeSymlink, LinkTarget: "../t\x80rget", ModTime: mt,
			Xattrs: []repo.Xattr{{Name: "user.\xff", Value: []byte{0, 1}}, {Name: "user.ok", Value: nil}}},
	}}
	id, err := r.SaveTree(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadTree(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 3 {
		t.Fatalf("got %d nodes", len(got.Nodes))
	}
	for i, n := range got.Nodes {
		w := tree.Nodes[i]
		if n.Name != w.Name || n.LinkTarget != w.LinkTarget || n.Type != w.Type || n.Mode != w.Mode || !n.ModTime.Equal(w.ModTime) {
			t.Errorf("node %d: got %+v, want %+v", i, n, w)
		}
	}
	if x := got.Nodes[2].Xattrs; len(x) != 2 || x[0].Name != "user.\xff" || !bytes.Equal(x[0].Value, []byte{0, 1}) {
		t.Errorf("xattrs: %+v", x)
	}
	if c := got.Nodes[0].Content; len(c) != 2 || *c[0].ID != blob || c[1].ID != nil || c[1].Len != 2 {
		t.Errorf("content: %+v", c)
	}
	bad := &repo.Tree{Nodes: []*repo.Node{{Name: "b", Type: repo.NodeFile}, {Name: "a", Type: repo.NodeFile}}}
	if _, err := r.SaveTree(ctx, bad); err == nil {
		t.Error("unsorted tree saved")
	}
	for _, name := range []string{"", ".", "..", "a/b", "a\x00"} {
		if _, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{{Name: name, Type: repo.NodeFile}}}); err == nil {
			t.Errorf("tree with name %q saved", name)
		}
	}
}

func TestChunkList(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	var chunks []repo.DiskChunk
	off := uint64(0)
	for i := range repo.MaxChunkListRecords*2 + 5 {
		l := uint32(4096 + i%7)
		chunks = append(chunks, repo.DiskChunk{Offset: off, Length: l, ID: repo.ID{byte(i), byte(i >> 8)}})
		off += uint64(l) + uint64(i%3)*512 // holes between some chunks
	}
	ids, err := r.SaveChunkList(ctx, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Fatalf("got %d chunk-list blobs, want 3", len(ids))
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var got []repo.DiskChunk
	if err := r.LoadChunkList(ctx, ids, func(c repo.DiskChunk) error { got = append(got, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(chunks) {
		t.Fatalf("got %d chunks, want %d", len(got), len(chunks))
	}
	for i := range got {
		if got[i] != chunks[i] {
			t.Fatalf("chunk %d: got %+v, want %+v", i, got[i], chunks[i])
		}
	}
	overlap := []repo.DiskChunk{{Offset: 0, Length: 10}, {Offset: 5, Length: 10}}
	if _, err := r.SaveChunkList(ctx, overlap); err == nil {
		t.Error("overlapping chunk list saved")
	}
	// Order is checked across blobs too: listing blob 2 before blob 1 fails.
	if err := r.LoadChunkList(ctx, []repo.ID{ids[1], ids[0]}, func(repo.DiskChunk) error { return nil }); err == nil {
		t.Error("out-of-order chunk-list blobs accepted")
	}
}

func TestSnapshots(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var saved []repo.ID
	for i := range 5 {
		sn := &repo.Snapshot{Time: base.Add(time.Duration(4-i) * time.Hour), Paths: []string{"/x"}, Hostname: "h",
			Disks: []repo.Disk{{Name: "sda", Size: 1 << 20, SectorSize: 512, DataBytes: 4096, ChunkLists: []repo.ID{{1}}}}}
		id, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			t.Fatal(err)
		}
		if sn.ID != id {
			t.Fatal("SaveSnapshot did not set ID")
		}
		saved = append(saved, id)
	}
	sns, err := repotest.Reopen(t, r).Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sns) != 5 {
		t.Fatalf("got %d snapshots", len(sns))
	}
	for i := 1; i < len(sns); i++ {
		if sns[i].Time.Before(sns[i-1].Time) {
			t.Fatal("snapshots not sorted by time")
		}
	}
	if sns[0].ID != saved[4] || sns[0].Disks[0].Name != "sda" {
		t.Fatalf("oldest snapshot %s, want %s", sns[0].ID.Str(), saved[4].Str())
	}
	sn, err := r.FindSnapshot(ctx, saved[2].String()[:10])
	if err != nil || sn.ID != saved[2] {
		t.Fatalf("find by prefix: %v", err)
	}
	if latest, err := r.FindSnapshot(ctx, "latest"); err != nil || latest.ID != saved[0] {
		t.Fatalf("find latest: %v", err)
	}
	if _, err := r.FindSnapshot(ctx, "zz"); err == nil {
		t.Error("invalid prefix accepted")
	}
	if _, err := r.FindSnapshot(ctx, ""); err == nil {
		t.Error("empty prefix accepted")
	}
	if err := r.RemoveSnapshot(ctx, saved[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FindSnapshot(ctx, saved[2].String()); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("removed snapshot: %v", err)
	}
}

func TestSaveSnapshotRequiresFlush(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	d := []byte("data")
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(d), d); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now()}); err == nil {
		t.Fatal("snapshot saved before flush")
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := repotest.NewOn(t, be)
	first := r.KeyID()
	id2, err := r.AddKey(ctx, "second", "h2", "u2")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := r.Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys: %v %d", err, len(keys))
	}
	r2, err := repo.Open(ctx, be, "second")
	if err != nil {
		t.Fatal(err)
	}
	if r2.KeyID() != id2 {
		t.Fatal("opened with the wrong key")
	}
	if err := r.RemoveKey(ctx, first); err == nil {
		t.Fatal("removed the key in use")
	}
	if err := r2.RemoveKey(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, be, repotest.Password); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("removed password still opens: %v", err)
	}
	nid, err := r2.ChangePassword(ctx, "third")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, be, "second"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("old password still opens: %v", err)
	}
	r3, err := repo.Open(ctx, be, "third")
	if err != nil || r3.KeyID() != nid {
		t.Fatalf("new password: %v", err)
	}
	if err := r3.RemoveKey(ctx, nid); err == nil {
		t.Fatal("removed the last key")
	}
}

func TestSnapshotsWithErrors(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := repotest.NewOn(t, be)
	good, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.SnapshotFile, Name: bad.String()}
	b, _ := be.Load(ctx, h, 0, 0)
	b[len(b)-1] ^= 1
	_ = be.Save(ctx, h, b)
	if _, err := r.Snapshots(ctx); err == nil || !strings.Contains(err.Error(), bad.Str()) {
		t.Fatalf("Snapshots with a damaged file: %v", err)
	}
	sns, errs, err := r.SnapshotsWithErrors(ctx)
	if err != nil || len(sns) != 1 || sns[0].ID != good || len(errs) != 1 {
		t.Fatalf("SnapshotsWithErrors = %d snapshots, %v, %v", len(sns), errs, err)
	}
}

// TestConcurrentSaveBlobStress saves blobs of mixed sizes (some larger than
// a pack) from several goroutines, which seal into shared pack buffers, and
// verifies every blob after reopening.
func TestConcurrentSaveBlobStress(t *testing.T) {
	ctx := context.Background()
	old := repo.PackSize
	repo.PackSize = 256 << 10
	defer func() { repo.PackSize = old }()
	r := repotest.New(t)
	type saved struct {
		t    repo.BlobType
		id   repo.ID
		data []byte
	}
	var mu sync.Mutex
	var all []saved
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 99))
			for i := range 60 {
				n := 100 + rnd.IntN(64<<10)
				if i%17 == 0 {
					n = 300<<10 + rnd.IntN(300<<10) // larger than a pack
				}
				var d []byte
				if i%2 == 0 {
					d = randomBytes(uint64(g*1000+i), n)
				} else {
					d = compressible(uint64(g*1000+i), n)
				}
				bt := repo.BlobType(i % 3 / 2)
				id := r.BlobID(d)
				if _, _, err := r.SaveBlob(ctx, bt, id, d); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, saved{bt, id, d})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := repotest.Reopen(t, r)
	for _, s := range all {
		got, err := r2.LoadBlob(ctx, s.t, s.id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, s.data) {
			t.Fatalf("%s blob %s differs", s.t, s.id.Str())
		}
	}
	packs, err := r2.ListPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id := range packs {
		hdr, err := r2.LoadPackHeader(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, pb := range hdr {
			if pb.Type != hdr[0].Type {
				t.Fatalf("pack %s mixes blob types", id.Str())
			}
		}
	}
}
