package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/klauspost/compress/zstd"
)

// TestLayoutMatchesDesign decodes a pack and an index file by hand, as
// docs/design.md describes them, independently of the package's decoders.
func TestLayoutMatchesDesign(t *testing.T) {
	ctx := context.Background()
	TestUseLowSecurityKDFParameters()
	be := mem.New()
	r, err := Init(ctx, be, "pw", InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blobs := [][]byte{bytes.Repeat([]byte("compress me "), 500), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	for _, b := range blobs {
		if _, _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(b), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var packName string
	_ = be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error { packName = fi.Name; return nil })
	pack, _ := be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: packName}, 0, 0)
	if FileID(pack).String() != packName {
		t.Fatal("pack not named by the BLAKE3-256 of its bytes")
	}
	hl := int(binary.LittleEndian.Uint32(pack[len(pack)-4:]))
	if hl != sealExtra+2*44 {
		t.Fatalf("header length %d, want %d", hl, sealExtra+2*44)
	}
	hdr, err := r.crypt.open(nil, pack[len(pack)-4-hl:len(pack)-4])
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	dec, _ := zstd.NewReader(nil)
	for i, want := range blobs {
		rec := hdr[i*44 : (i+1)*44]
		typ, comp := rec[0], rec[1]
		sealedLen := int(binary.LittleEndian.Uint32(rec[4:]))
		plainLen := int(binary.LittleEndian.Uint32(rec[8:]))
		var id ID
		copy(id[:], rec[12:])
		if typ != 0 || rec[2] != 0 || rec[3] != 0 || plainLen != len(want) || id != r.BlobID(want) {
			t.Fatalf("record %d: %x", i, rec)
		}
		stored, err := r.crypt.open(nil, pack[off:off+sealedLen])
		if err != nil {
			t.Fatal(err)
		}
		if comp == 1 {
			if stored, err = dec.DecodeAll(stored, nil); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(stored, want) {
			t.Fatalf("blob %d content differs", i)
		}
		if (i == 0) != (comp == 1) {
			t.Fatalf("blob %d: compressed flag %d", i, comp)
		}
		off += sealedLen
	}
	if off+hl+4 != len(pack) {
		t.Fatal("blobs and header do not fill the pack")
	}

	var idxName string
	_ = be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error { idxName = fi.Name; return nil })
	sealedIdx, _ := be.Load(ctx, backend.Handle{Type: backend.IndexFile, Name: idxName}, 0, 0)
	plain, err := r.crypt.open(nil, sealedIdx)
	if err != nil {
		t.Fatal(err)
	}
	if plain[0] != 1 || plain[1]|plain[2]|plain[3] != 0 {
		t.Fatalf("index prefix %x", plain[:4])
	}
	body, err := dec.DecodeAll(plain[8:], nil)
	if err != nil || len(body) != int(binary.LittleEndian.Uint32(plain[4:])) {
		t.Fatalf("index body: %v", err)
	}
	// supersedes 0 | packs 1 | pack id | 2 blobs | 2 × 48
	if len(body) != 4+4+32+4+2*48 || binary.LittleEndian.Uint32(body) != 0 || binary.LittleEndian.Uint32(body[4:]) != 1 {
		t.Fatalf("index body %d bytes", len(body))
	}
	if ID(body[8:40]).String() != packName || binary.LittleEndian.Uint32(body[40:]) != 2 {
		t.Fatal("index names the wrong pack")
	}
	rec := body[44+48:]
	if binary.LittleEndian.Uint32(rec[4:]) == 0 || ID(rec[16:48]) != r.BlobID(blobs[1]) || binary.LittleEndian.Uint32(rec[12:]) != 10 {
		t.Fatalf("second index record %x", rec)
	}
}
