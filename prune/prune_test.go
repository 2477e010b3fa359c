package prune_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func TestMain(m *testing.M) {
	// Small packs, so a small history spreads over many packs.
	repo.PackSize = 48 << 10
	m.Run()
}

func blob(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// history writes n snapshots into r. Snapshot i has a file tree of a shared
// file, a file of its own and a subdirectory, and a disk whose chunk list
// shares half of its chunks with the previous snapshot.
func history(t testing.TB, r *repo.Repository, n int) []*repo.Snapshot {
	t.Helper()
	ctx := context.Background()
	save := func(d []byte) repo.ID {
		id := r.BlobID(d)
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, d); err != nil {
			t.Fatal(err)
		}
		return id
	}
	mt := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	shared := save(blob(1, 9000))
	var sns []*repo.Snapshot
	for i := range n {
		s := uint64(100 * (i + 1))
		own := save(blob(s, 7000+i))
		own2 := save(blob(s+1, 5000))
		sub, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{
			{Name: fmt.Sprintf("f%d", i), Type: repo.NodeFile, ModTime: mt, Size: 5000, Content: []repo.Chunk{{ID: &own2, Len: 5000}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		root, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{
			{Name: "own", Type: repo.NodeFile, ModTime: mt, Size: uint64(7000 + i), Content: []repo.Chunk{{ID: &own, Len: uint64(7000 + i)}}},
			{Name: "shared", Type: repo.NodeFile, ModTime: mt, Size: 9000, Content: []repo.Chunk{{ID: &shared, Len: 9000}}},
			{Name: "sub", Type: repo.NodeDir, ModTime: mt, Subtree: &sub},
		}})
		if err != nil {
			t.Fatal(err)
		}
		var chunks []repo.DiskChunk
		for c := range 6 {
			seed := uint64(10000 + 3*i + c) // consecutive snapshots share chunks
			chunks = append(chunks, repo.DiskChunk{Offset: uint64(c) << 16, Length: 4096, ID: save(blob(seed, 4096))})
		}
		lists, err := r.SaveChunkList(ctx, chunks)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		sn := &repo.Snapshot{Time: mt.Add(time.Duration(i) * time.Hour), Tree: &root, Paths: []string{"/src", "/dev/vda"}, Hostname: "h",
			Disks: []repo.Disk{{Name: "vda", Source: "/dev/vda", Size: 1 << 20, SectorSize: 512, ChunkLists: lists, Chunks: 6, DataBytes: 6 * 4096}}}
		if _, err := r.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
		sns = append(sns, sn)
	}
	return sns
}

// forgetHalf removes every other snapshot.
func forgetHalf(t testing.TB, r *repo.Repository, sns []*repo.Snapshot) {
	t.Helper()
	for i, sn := range sns {
		if i%2 == 0 {
			if err := r.RemoveSnapshot(context.Background(), sn.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// mustCheck checks r (reopened) with read-data and fails on errors; with
// clean it also fails on warnings.
func mustCheck(t testing.TB, r *repo.Repository, clean bool) {
	t.Helper()
	r = repotest.Reopen(t, r)
	res, err := check.Check(context.Background(), r, check.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		if p.Severity == check.Error || clean {
			t.Errorf("check: %s %s: %s", p.Severity, p.Kind, p.Message)
		}
	}
}

func listAll(t testing.TB, be backend.Backend) []string {
	t.Helper()
	var out []string
	for _, ft := range []backend.FileType{backend.SnapshotFile, backend.IndexFile, backend.PackFile} {
		if err := be.List(context.Background(), ft, func(fi backend.FileInfo) error {
			out = append(out, string(ft)+"/"+fi.Name)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	sns := history(t, r, 10)
	forgetHalf(t, r, sns)
	r = repotest.Reopen(t, r)
	before := listAll(t, r.Backend())

	plan, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Snapshots != 5 || len(plan.Delete) == 0 || len(plan.Repack) == 0 || plan.BytesFreed <= 0 || plan.BytesRewrite <= 0 {
		t.Fatalf("plan: %+v\n%s", plan, plan)
	}
	for _, want := range []string{"packs to delete:", "packs to repack:", "bytes freed:", "bytes to rewrite:"} {
		if !strings.Contains(plan.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, plan)
		}
	}
	if got := listAll(t, r.Backend()); !slices.Equal(got, before) {
		t.Fatal("planning changed the repository")
	}
	res, err := plan.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.PacksDeleted != len(plan.Delete)+len(plan.Repack) || res.PacksWritten == 0 || res.BlobsCopied == 0 {
		t.Errorf("result %+v", res)
	}
	if _, err := plan.Execute(ctx); err == nil {
		t.Error("second Execute of a plan: no error")
	}
	mustCheck(t, r, true)

	// Afterwards the unused data is within the limit and a new plan is empty.
	r = repotest.Reopen(t, r)
	again, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() {
		t.Errorf("second plan not empty:\n%s", again)
	}
	if again.UnusedBytes > (again.UsedBytes+again.UnusedBytes)*5/100 {
		t.Errorf("unused %d of %d after prune", again.UnusedBytes, again.UsedBytes+again.UnusedBytes)
	}
	if again.UsedBytes != plan.UsedBytes || again.UsedBlobs != plan.UsedBlobs {
		t.Errorf("used data changed: %d/%d -> %d/%d", plan.UsedBlobs, plan.UsedBytes, again.UsedBlobs, again.UsedBytes)
	}
}

func TestPruneMaxUnused(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	forgetHalf(t, r, history(t, r, 8))
	r = repotest.Reopen(t, r)
	unlimited, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.Limit{Unlimited: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(unlimited.Repack) != 0 || len(unlimited.Delete) == 0 {
		t.Errorf("unlimited: repack %d delete %d", len(unlimited.Repack), len(unlimited.Delete))
	}
	zero, err := prune.NewPlan(ctx, r, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if zero.UnusedAfter != 0 || len(zero.Repack) == 0 {
		t.Errorf("max-unused 0: unused after %d, repack %d", zero.UnusedAfter, len(zero.Repack))
	}
	if _, err := zero.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r, true)
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]prune.Limit{
		"5%": {Percent: 5}, "0%": {}, "unlimited": {Unlimited: true}, "500M": {Bytes: 500_000_000}, "2GiB": {Bytes: 2 << 30},
	} {
		got, err := prune.ParseLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "100%", "-1%", "x%", "five", "-5M"} {
		if _, err := prune.ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q): no error", bad)
		}
	}
}

func TestPruneRefusesMissingData(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	history(t, r, 3)
	// Remove a pack that holds data the snapshots use.
	packs, err := r.ListPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id := range packs {
		if err := r.Backend().Remove(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}); err != nil {
			t.Fatal(err)
		}
		break
	}
	before := listAll(t, r.Backend())
	if _, err := prune.NewPlan(ctx, repotest.Reopen(t, r), prune.Options{MaxUnused: prune.DefaultMaxUnused}); err == nil || !strings.Contains(err.Error(), "run check") {
		t.Fatalf("NewPlan with a used pack missing: err = %v", err)
	}
	if !slices.Equal(before, listAll(t, r.Backend())) {
		t.Error("repository changed")
	}
}

func TestPruneRemovesUnindexedPacks(t *testing.T) {
	ctx := context.Background()
	fb := faulty.New(mem.New())
	r := repotest.NewOn(t, fb)
	history(t, r, 2)
	// A backup killed after writing a pack but before its index.
	fb.Add(faulty.Rule{Method: faulty.Save, Type: backend.IndexFile})
	d := blob(99, 30000)
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(d), d); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush: no error")
	}
	fb.Clear()
	r = repotest.Reopen(t, r)
	plan, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Delete) != 1 || !plan.Delete[0].Unindexed {
		t.Fatalf("plan deletes %+v, want the one unindexed pack", plan.Delete)
	}
	if _, err := plan.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r, true)
}

// TestPruneCrash interrupts prune at every backend write and removal in
// turn (the write failing, or failing after it reached the storage), checks
// that the repository is intact, and that a re-run finishes the job.
func TestPruneCrash(t *testing.T) {
	ctx := context.Background()
	type fault struct {
		m       faulty.Method
		persist bool
	}
	steps := 0
	for _, f := range []fault{{faulty.Save, false}, {faulty.Save, true}, {faulty.Remove, false}} {
		for k := 0; ; k++ {
			fb := faulty.New(mem.New())
			r := repotest.NewOn(t, fb)
			sns := history(t, r, 6)
			forgetHalf(t, r, sns)
			r = repotest.Reopen(t, r)
			plan, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
			if err != nil {
				t.Fatal(err)
			}
			fb.Add(faulty.Rule{Method: f.m, After: k, Times: 1, Persist: f.persist})
			_, err = plan.Execute(ctx)
			fb.Clear()
			if err == nil {
				if k == 0 {
					t.Fatalf("%s: prune made no %s call", f.m, f.m)
				}
				break // every call of this kind has been failed once
			}
			if !errors.Is(err, faulty.ErrInjected) {
				t.Fatalf("%s #%d: %v", f.m, k, err)
			}
			steps++
			mustCheck(t, r, false)

			r = repotest.Reopen(t, r)
			if _, _, err := prune.Run(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused}); err != nil {
				t.Fatalf("%s #%d: re-run: %v", f.m, k, err)
			}
			mustCheck(t, r, true)
			r = repotest.Reopen(t, r)
			final, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
			if err != nil {
				t.Fatal(err)
			}
			if !final.Empty() || final.Snapshots != 3 {
				t.Errorf("%s #%d: after re-run: %d snapshots, plan\n%s", f.m, k, final.Snapshots, final)
			}
		}
	}
	if steps < 5 {
		t.Errorf("only %d crash points exercised", steps)
	}
	t.Logf("%d crash points", steps)
}

// TestPruneDuplicates: a blob stored in two packs (an interrupted backup's
// pack, indexed later) keeps one copy.
func TestPruneDuplicates(t *testing.T) {
	ctx := context.Background()
	fb := faulty.New(mem.New())
	r := repotest.NewOn(t, fb)
	fb.Add(faulty.Rule{Method: faulty.Save, Type: backend.IndexFile})
	// An interrupted backup: the pack with the blob history shares between
	// snapshots is written, its index is not.
	d := blob(1, 9000)
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(d), d); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush: no error")
	}
	fb.Clear()
	r = repotest.Reopen(t, r)
	history(t, r, 2) // stores everything again, indexed
	if n, _, err := r.IndexOrphanPacks(ctx); err != nil || n == 0 {
		t.Fatalf("IndexOrphanPacks = %d, %v", n, err)
	}
	r = repotest.Reopen(t, r)
	plan, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
	if err != nil {
		t.Fatal(err)
	}
	if plan.DuplicateBlobs == 0 || plan.Empty() {
		t.Fatalf("plan: %d duplicates\n%s", plan.DuplicateBlobs, plan)
	}
	if _, err := plan.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r, true) // check warns about duplicate blobs: none may be left
	again, err := prune.NewPlan(ctx, repotest.Reopen(t, r), prune.Options{MaxUnused: prune.DefaultMaxUnused})
	if err != nil {
		t.Fatal(err)
	}
	if again.DuplicateBlobs != 0 || !again.Empty() {
		t.Errorf("after prune: %d duplicates\n%s", again.DuplicateBlobs, again)
	}
}
