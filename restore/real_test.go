//go:build linux

package restore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

// realStore adapts the real repository to the tests' store.
type realStore struct {
	*repo.Repository
	t testing.TB
}

var _ Repo = (*repo.Repository)(nil)

func (s realStore) saveData(b []byte) repo.ID {
	id := s.BlobID(b)
	if _, _, err := s.SaveBlob(context.Background(), repo.DataBlob, id, b); err != nil {
		s.t.Fatal(err)
	}
	return id
}

func (s realStore) saveTree(t *repo.Tree) repo.ID {
	id, err := s.SaveTree(context.Background(), t)
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

func (s realStore) saveChunkList(chunks []repo.DiskChunk, _ int) []repo.ID {
	ids, err := s.SaveChunkList(context.Background(), chunks)
	if err != nil {
		s.t.Fatal(err)
	}
	return ids
}

func (s realStore) flush() {
	if err := s.Flush(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

func TestRealRepoFiles(t *testing.T) {
	r, dir := repotest.NewLocal(t)
	s := realStore{r, t}
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 64<<10)
	s.flush()
	r = repotest.Reopen(t, r)
	dst := t.TempDir()
	st, err := Files(context.Background(), r, sn, dst, FileOptions{Verify: true, BlobID: r.BlobID})
	if err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, dst)
	if st.Verified != 10 {
		t.Errorf("verified %d", st.Verified)
	}

	// Damage one data blob in its pack file: the restore goes on, names
	// the file that uses it, and restores everything else.
	n, err := Lookup(context.Background(), r, *sn.Tree, "/a/b/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	target := *n.Content[2].ID
	var pb repo.PackedBlob
	r.EachBlob(func(b repo.PackedBlob) error {
		if b.ID == target {
			pb = b
		}
		return nil
	})
	if pb.ID != target {
		t.Fatal("blob not in the index")
	}
	pack := filepath.Join(dir, "data", pb.Pack.String()[:2], pb.Pack.String())
	data, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	data[pb.Offset+pb.Length/2] ^= 0x01
	os.Chmod(pack, 0o600)
	if err := os.WriteFile(pack, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var reported []string
	dst = t.TempDir()
	_, err = Files(context.Background(), r, sn, dst, FileOptions{OnError: func(p string, err error) error {
		reported = append(reported, p+": "+err.Error())
		return nil
	}})
	var ie *IncompleteError
	if !errors.As(err, &ie) || len(ie.Failed) != 1 || ie.Failed[0].Path != "/a/b/big.bin" {
		t.Fatalf("err = %v, reported %q", err, reported)
	}
	t.Logf("reported: %s", reported[0])
	os.Remove(filepath.Join(dst, "a", "b", "big.bin"))
	os.Remove(filepath.Join(src, "a", "b", "big.bin"))
	setTimesT(t, filepath.Join(dst, "a", "b"), past1, past1)
	setTimesT(t, filepath.Join(src, "a", "b"), past1, past1)
	compareTrees(t, src, dst)
}

func TestRealRepoDisk(t *testing.T) {
	r := repotest.New(t)
	s := realStore{r, t}
	content := makeDiskContent(6)
	d, chunks := makeDisk(t, s, content, 0)
	s.flush()
	r = repotest.Reopen(t, r)
	ctx := context.Background()
	opts := DiskOptions{BlobID: r.BlobID}

	path := filepath.Join(t.TempDir(), "disk.raw")
	w := newRawWriter(t, path, d.Size)
	if _, err := Disk(ctx, r, d, w, opts); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if !bytes.Equal(readAll(t, path), content) {
		t.Fatal("restored disk differs")
	}
	old := bytes.Clone(content)
	for i := 0; i < len(chunks); i += 50 {
		old[chunks[i].Offset] ^= 0xff
	}
	tp := writeTarget(t, old)
	st, err := DiskDelta(ctx, r, d, openRW(t, tp), opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64((len(chunks) + 49) / 50); st.ChunksWritten != want {
		t.Errorf("delta wrote %d chunks, want %d", st.ChunksWritten, want)
	}
	if _, err := VerifyDisk(ctx, r, d, openRW(t, tp), opts); err != nil {
		t.Error(err)
	}
	img := DiskReader(ctx, r, d)
	buf := make([]byte, 4096)
	if _, err := img.ReadAt(buf, diskSize-4096); err != nil || !bytes.Equal(buf, content[diskSize-4096:]) {
		t.Errorf("disk reader: %v", err)
	}
	var out bytes.Buffer
	if err := DumpDisk(ctx, r, d, 1<<20, 4<<20, &out); err != nil || !bytes.Equal(out.Bytes(), content[1<<20:5<<20]) {
		t.Errorf("dump disk: %v", err)
	}
}
