package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
)

// fuzzRepo is a small repository with real content whose files seed the
// fuzz tests.
func fuzzRepo(f *testing.F) (*Repository, *mem.Backend) {
	f.Helper()
	TestUseLowSecurityKDFParameters()
	be := mem.New()
	ctx := context.Background()
	r, err := Init(ctx, be, "pw", InitOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 5 {
		d := bytes.Repeat([]byte{byte(i)}, 1000*(i+1))
		d[0] = 0xff
		if _, _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(d), d); err != nil {
			f.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		f.Fatal(err)
	}
	return r, be
}

func loadAll(f *testing.F, be backend.Backend, t backend.FileType) [][]byte {
	f.Helper()
	var out [][]byte
	ctx := context.Background()
	_ = be.List(ctx, t, func(fi backend.FileInfo) error {
		b, err := be.Load(ctx, backend.Handle{Type: t, Name: fi.Name}, 0, 0)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
		return nil
	})
	return out
}

func FuzzPackHeader(f *testing.F) {
	r, be := fuzzRepo(f)
	for _, pack := range loadAll(f, be, backend.PackFile) {
		f.Add(pack, true)
		blobs, _, err := r.crypt.readPackHeader(pack, ID{}, int64(len(pack)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeHeaderRecords(blobs), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, sealed bool) {
		if sealed {
			blobs, _, err := r.crypt.readPackHeader(b, ID{}, int64(len(b)))
			if err == nil && len(blobs) == 0 {
				t.Fatal("empty header accepted")
			}
			return
		}
		// Plaintext records: the pack size follows from the records so
		// the size check can pass.
		var size int64
		for i := 0; i+headerRecordSize <= len(b); i += headerRecordSize {
			size += int64(uint32(b[i+4]) | uint32(b[i+5])<<8 | uint32(b[i+6])<<16 | uint32(b[i+7])<<24)
		}
		blobs, err := parsePackHeader(b, ID{}, size+100, 96)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeHeaderRecords(blobs), b) {
			t.Fatal("header does not re-encode to the same bytes")
		}
	})
}

func FuzzIndexFile(f *testing.F) {
	r, be := fuzzRepo(f)
	for _, sealed := range loadAll(f, be, backend.IndexFile) {
		plain, err := r.crypt.open(nil, sealed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	f.Add(encodeIndexFile(&IndexFile{Supersedes: []ID{{1}, {2}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := decodeIndexFile(b)
		if err != nil {
			return
		}
		again, err := decodeIndexFile(encodeIndexFile(idx))
		if err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
		if len(again.Packs) != len(idx.Packs) || len(again.Supersedes) != len(idx.Supersedes) {
			t.Fatal("index changed in a round trip")
		}
	})
}

func FuzzSnapshot(f *testing.F) {
	tree := ID{7}
	sn := &Snapshot{Time: time.Unix(1700000000, 5).UTC(), Tree: &tree, Paths: []string{"/a", "/b\n"}, Hostname: "h",
		Disks:   []Disk{{Name: "sda", Size: 1 << 30, SectorSize: 4096, Digest: "00", ChunkLists: []ID{{1}}, Chunks: 3, DataBytes: 4096}},
		Summary: &SnapshotSummary{FilesNew: 3}}
	b, err := encodeSnapshot(sn)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":2,"time":"2020-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sn, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		enc, err := encodeSnapshot(sn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSnapshot(enc); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}

func FuzzKeyFile(f *testing.F) {
	_, be := fuzzRepo(f)
	for _, k := range loadAll(f, be, backend.KeyFile) {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseKeyFile(b)
		if err != nil {
			return
		}
		if kf.Memory > 1024 || kf.Time > 2 {
			return // keep the fuzzer fast; the limits are tested by validate
		}
		mk, err := kf.open("pw")
		if err == nil && !mk.valid() {
			t.Fatal("invalid master key accepted")
		}
	})
}

func FuzzConfig(f *testing.F) {
	r, _ := fuzzRepo(f)
	b, _ := json.Marshal(r.Config())
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig(b)
		if err != nil {
			return
		}
		enc, _ := json.Marshal(c)
		c2, err := parseConfig(enc)
		if err != nil || c2 != c {
			t.Fatalf("config round trip: %v", err)
		}
	})
}

func FuzzChunkList(f *testing.F) {
	f.Add(encodeChunkList([]DiskChunk{{Offset: 0, Length: 4096, ID: ID{1}}, {Offset: 1 << 20, Length: 512, ID: ID{2}}}))
	f.Add(encodeChunkList([]DiskChunk{{Offset: 1<<63 - 10, Length: 10}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d chunkListDecoder
		var got []DiskChunk
		if err := d.decode(b, func(c DiskChunk) error { got = append(got, c); return nil }); err != nil {
			return
		}
		if !bytes.Equal(encodeChunkList(got), b) {
			t.Fatal("chunk list does not re-encode to the same bytes")
		}
	})
}

func FuzzTree(f *testing.F) {
	id := ID{5}
	tr := &Tree{Nodes: []*Node{
		{Name: "a\nb", Type: NodeFile, Content: []Chunk{{ID: &id, Len: 4}, {Len: 9}}, ModTime: time.Unix(1, 2).UTC()},
		{Name: "d", Type: NodeDir, Subtree: &id},
		{Name: "l\xff", Type: NodeSymlink, LinkTarget: "\xfe", Xattrs: []Xattr{{Name: "user.\x80", Value: []byte{1}}}},
	}}
	b, err := encodeTree(tr)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"nodes":[{"name":"x","name_b64":"eA==","type":"file"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := decodeTree(b)
		if err != nil {
			return
		}
		enc, err := encodeTree(tr)
		if err != nil {
			t.Fatal(err)
		}
		tr2, err := decodeTree(enc)
		if err != nil {
			t.Fatalf("re-encoded tree does not decode: %v", err)
		}
		for i := range tr.Nodes {
			if tr.Nodes[i].Name != tr2.Nodes[i].Name || tr.Nodes[i].LinkTarget != tr2.Nodes[i].LinkTarget {
				t.Fatal("names changed in a round trip")
			}
		}
	})
}

func FuzzDecompress(f *testing.F) {
	f.Add(compress(nil, bytes.Repeat([]byte("abc"), 1000), false), 3000)
	f.Add(compress(nil, []byte("x"), true), 5)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		out, err := decompress(nil, b, n)
		if err == nil && len(out) != n {
			t.Fatalf("got %d bytes, want %d", len(out), n)
		}
	})
}
