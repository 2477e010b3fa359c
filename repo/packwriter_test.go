package repo_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

// TestPackWriter copies sealed blobs out of a pack into a new one and reads
// them back from it.
func TestPackWriter(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	var want [][]byte
	for i := range 5 {
		d := bytes.Repeat([]byte{byte(i), 1, 2, 3}, 1000*(i+1))
		want = append(want, d)
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(d), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs := r.IndexedPacks()
	if len(packs) != 1 {
		t.Fatalf("%d packs", len(packs))
	}
	old, err := r.Backend().Load(ctx, backend.Handle{Type: backend.PackFile, Name: packs[0].String()}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := r.ParsePack(packs[0], old)
	if err != nil {
		t.Fatal(err)
	}
	w := r.NewPackWriter(repo.DataBlob)
	w.Grow(100)
	for _, pb := range hdr[1:4] { // blobs 1 to 3
		if err := w.Add(pb, old[pb.Offset:pb.Offset+pb.Length]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(repo.PackedBlob{Type: repo.TreeBlob, Length: 100}, make([]byte, 100)); err == nil {
		t.Error("a tree blob was added to a data pack")
	}
	ip, err := w.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w.Count() != 0 || w.Size() != 0 {
		t.Error("writer not empty after Finish")
	}
	if _, err := w.Finish(ctx); err == nil {
		t.Error("Finish of an empty writer: no error")
	}
	data, err := r.Backend().Load(ctx, backend.Handle{Type: backend.PackFile, Name: ip.ID.String()}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if repo.FileID(data) != ip.ID {
		t.Fatal("pack not named by its hash")
	}
	got, err := r.ParsePack(ip.ID, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("new pack holds %d blobs", len(got))
	}
	for i, pb := range got {
		if pb != ip.Blobs[i] {
			t.Errorf("header %+v, index entry %+v", pb, ip.Blobs[i])
		}
		plain, err := r.OpenBlob(pb, data[pb.Offset:pb.Offset+pb.Length], nil)
		if err != nil || !bytes.Equal(plain, want[i+1]) {
			t.Errorf("blob %d: %v", i, err)
		}
	}
}
