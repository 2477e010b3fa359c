package transfer_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/backup"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/repotest"
	"github.com/bunkerbackup/bunker/restore"
	"github.com/bunkerbackup/bunker/transfer"
	_ "github.com/bunkerbackup/bunker/vmdisk/all"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

type counter struct {
	mu                                sync.Mutex
	snapshots, skipped, stored, known int
}

func (c *counter) Snapshot(_ *repo.Snapshot, skip bool) {
	c.snapshots++
	if skip {
		c.skipped++
	}
}

func (c *counter) Blob(_ int64, stored bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stored {
		c.stored++
	} else {
		c.known++
	}
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	src, dst := repotest.New(t), repotest.New(t)
	if src.Config().ChunkerPolynomial == dst.Config().ChunkerPolynomial {
		t.Fatal("the repositories share a chunker polynomial")
	}

	dir := t.TempDir()
	repotest.WriteFile(t, filepath.Join(dir, "big.bin"), repotest.Random(1, 5<<20))
	repotest.WriteFile(t, filepath.Join(dir, "sub", "note.txt"), []byte("copied\n"))
	repotest.WriteFile(t, filepath.Join(dir, "sparse"), append(make([]byte, 1<<20), repotest.Random(2, 5000)...))
	img := filepath.Join(t.TempDir(), "vm1.raw")
	f, _ := os.Create(img)
	f.Truncate(16 << 20)
	f.WriteAt(repotest.Random(3, 2<<20), 1<<20)
	f.WriteAt(repotest.Random(4, 100000), 12<<20)
	f.Close()

	sn1, err := backup.Run(ctx, src, backup.Sources{Paths: []string{dir}, Disks: []backup.DiskSource{{Path: img, Name: "vm1"}}},
		backup.Options{Tags: []string{"nightly"}, Hostname: "hostA"})
	if err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, filepath.Join(dir, "sub", "new.txt"), repotest.Random(5, 70000))
	sn2, err := backup.Run(ctx, src, backup.Sources{Paths: []string{dir}}, backup.Options{Hostname: "hostA", Parent: sn1})
	if err != nil {
		t.Fatal(err)
	}

	prog := &counter{}
	res, err := transfer.Copy(ctx, src, dst, []*repo.Snapshot{sn1, sn2}, transfer.Options{Progress: prog})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Skipped || res[1].Skipped || res[0].BlobsStored == 0 || res[1].BlobsStored == 0 {
		t.Fatalf("results %+v", res)
	}
	if res[1].BlobsStored >= res[0].BlobsStored || res[1].BlobsKnown == 0 {
		t.Errorf("the second snapshot stored %d blobs, knew %d: blobs are not shared", res[1].BlobsStored, res[1].BlobsKnown)
	}
	if prog.snapshots != 2 || prog.skipped != 0 || prog.stored != res[0].BlobsStored+res[1].BlobsStored {
		t.Errorf("progress %+v", prog)
	}
	c1, c2 := res[0].Copy, res[1].Copy
	if *c1.Tree == *sn1.Tree || c1.Disks[0].ChunkLists[0] == sn1.Disks[0].ChunkLists[0] {
		t.Error("ids were not re-keyed")
	}
	if !c1.Time.Equal(sn1.Time) || c1.Hostname != "hostA" || c1.Tags[0] != "nightly" || c1.Paths[0] != sn1.Paths[0] {
		t.Errorf("copy %+v of %+v", c1, sn1)
	}
	if c2.Parent == nil || *c2.Parent != c1.ID {
		t.Errorf("parent of the second copy %v, want %s", c2.Parent, c1.ID.Str())
	}

	// Restore from the destination, as a new process would open it.
	dst = repotest.Reopen(t, dst)
	sns, err := dst.Snapshots(ctx)
	if err != nil || len(sns) != 2 {
		t.Fatalf("destination snapshots %d, %v", len(sns), err)
	}
	out := t.TempDir()
	if _, err := restore.Files(ctx, dst, sns[1], out, restore.FileOptions{Verify: true, BlobID: dst.BlobID}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"big.bin", "sub/note.txt", "sub/new.txt", "sparse"} {
		want, _ := os.ReadFile(filepath.Join(dir, name))
		got, err := os.ReadFile(filepath.Join(out, dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s restored from the copy differs (%v)", name, err)
		}
	}
	rawOut := filepath.Join(t.TempDir(), "out.raw")
	w, err := raw.Create(rawOut, sns[0].Disks[0].Size, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Disk(ctx, dst, &sns[0].Disks[0], w, restore.DiskOptions{}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	want, _ := os.ReadFile(img)
	if got, _ := os.ReadFile(rawOut); !bytes.Equal(got, want) {
		t.Error("disk restored from the copy differs")
	}

	// Copying again copies nothing, in this process or a new one.
	dataBlobs, treeBlobs := dst.BlobCount(repo.DataBlob), dst.BlobCount(repo.TreeBlob)
	prog = &counter{}
	res, err = transfer.Copy(ctx, src, dst, []*repo.Snapshot{sn1, sn2}, transfer.Options{Progress: prog})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Skipped || !res[1].Skipped || res[0].Copy.ID != sns[0].ID || res[1].Copy.ID != sns[1].ID {
		t.Errorf("second copy: %+v", res)
	}
	if prog.stored+prog.known != 0 || prog.skipped != 2 {
		t.Errorf("second copy read blobs: %+v", prog)
	}
	if dst.BlobCount(repo.DataBlob) != dataBlobs || dst.BlobCount(repo.TreeBlob) != treeBlobs {
		t.Error("second copy stored blobs")
	}
	if sns, _ := dst.Snapshots(ctx); len(sns) != 2 {
		t.Errorf("%d snapshots after the second copy", len(sns))
	}
}

// A destination snapshot with the same time, host and paths but other
// content is not taken for a copy.
func TestCopyNotFooledBySameTime(t *testing.T) {
	ctx := context.Background()
	src, dst := repotest.New(t), repotest.New(t)
	dir := t.TempDir()
	repotest.WriteFile(t, filepath.Join(dir, "f"), []byte("source content"))
	sn, err := backup.Run(ctx, src, backup.Sources{Paths: []string{dir}}, backup.Options{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, filepath.Join(dir, "f"), []byte("other content, longer"))
	if _, err := backup.Run(ctx, dst, backup.Sources{Paths: []string{dir}}, backup.Options{Hostname: "h", Time: sn.Time}); err != nil {
		t.Fatal(err)
	}
	res, err := transfer.Copy(ctx, src, dst, []*repo.Snapshot{sn}, transfer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Skipped {
		t.Fatal("a different snapshot was taken for a copy")
	}
}

// A damaged source blob stops the copy of that snapshot before anything
// references it: no snapshot is saved in the destination.
func TestCopyDamagedSource(t *testing.T) {
	ctx := context.Background()
	src, dir := repotest.NewLocal(t)
	dst := repotest.New(t)
	tree := t.TempDir()
	repotest.WriteFile(t, filepath.Join(tree, "f"), repotest.Random(7, 2<<20))
	sn, err := backup.Run(ctx, src, backup.Sources{Paths: []string{tree}}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return err
	})
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	b[size/2] ^= 0x55
	if err := os.WriteFile(biggest, b, 0o600); err != nil {
		t.Fatal(err)
	}
	src = repotest.Reopen(t, src)
	res, err := transfer.Copy(ctx, src, dst, []*repo.Snapshot{sn}, transfer.Options{})
	if err == nil || !strings.Contains(err.Error(), "load data blob") || len(res) != 0 {
		t.Fatalf("copy of a damaged snapshot: %v, %+v", err, res)
	}
	if sns, _ := dst.Snapshots(ctx); len(sns) != 0 {
		t.Errorf("%d snapshots in the destination", len(sns))
	}
}
