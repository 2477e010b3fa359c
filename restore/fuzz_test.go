package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
)

// FuzzChunkList feeds arbitrary chunk lists (unsorted, overlapping,
// beyond the disk, empty) to every disk reader: none may panic or hang,
// and a restore either fails or writes exactly the disk.
func FuzzChunkList(f *testing.F) {
	seed := func(entries ...[2]uint16) []byte {
		var b []byte
		for _, e := range entries {
			b = binary.LittleEndian.AppendUint16(b, e[0])
			b = binary.LittleEndian.AppendUint16(b, e[1])
		}
		return b
	}
	f.Add(uint16(4096), seed([2]uint16{0, 512}, [2]uint16{1024, 100}))
	f.Add(uint16(4096), seed([2]uint16{1024, 100}, [2]uint16{0, 512}))
	f.Add(uint16(4096), seed([2]uint16{0, 512}, [2]uint16{100, 512}))
	f.Add(uint16(4096), seed([2]uint16{4000, 200}))
	f.Add(uint16(1000), seed([2]uint16{0, 0}))
	f.Add(uint16(0), seed())
	f.Add(uint16(65535), seed([2]uint16{65000, 535}, [2]uint16{0, 65000}))
	f.Fuzz(fuzzOne)
}

func fuzzOne(t *testing.T, size uint16, list []byte) {
	s := newFakeRepo()
	var chunks []repo.DiskChunk
	for i := 0; i+4 <= len(list) && len(chunks) < 64; i += 4 {
		off := binary.LittleEndian.Uint16(list[i:])
		n := binary.LittleEndian.Uint16(list[i+2:])
		data := bytes.Repeat([]byte{byte(i/4 + 1)}, int(n))
		chunks = append(chunks, repo.DiskChunk{Offset: uint64(off), Length: uint32(n), ID: s.saveData(data)})
	}
	d := &repo.Disk{Name: "fuzz", Size: int64(size), ChunkLists: s.saveChunkList(chunks, 3), Chunks: uint64(len(chunks))}
	ctx := context.Background()
	w := &bytesWriterAt{}
	if _, err := DiskRange(ctx, s, d, 0, d.Size, w, DiskOptions{}); err == nil {
		if int64(len(w.b)) > d.Size {
			t.Fatalf("wrote %d bytes for a disk of %d", len(w.b), d.Size)
		}
	}
	var out bytes.Buffer
	if err := DumpDisk(ctx, s, d, 0, d.Size, &out); err == nil && int64(out.Len()) != d.Size {
		t.Fatalf("dumped %d bytes of %d", out.Len(), d.Size)
	}
	img := DiskReader(ctx, s, d)
	buf := make([]byte, 700)
	for off := int64(0); off < d.Size; off += 613 {
		img.ReadAt(buf, off)
	}
	img.Extents()
	VerifyDisk(ctx, s, d, bytes.NewReader(make([]byte, size)), DiskOptions{BlobID: s.BlobID})
}

// FuzzPatterns checks that include and exclude patterns never panic.
func FuzzPatterns(f *testing.F) {
	f.Add("/a/**/b*", "/a/x/y/bc")
	f.Add("*.txt", "/home/ann/notes.txt")
	f.Add("[x", "/x")
	f.Add("**/**/**", "/a/b/c/d/e")
	f.Add("/", "/")
	f.Fuzz(func(t *testing.T, pat, p string) {
		if strings.Count(pat, "**") > 6 {
			return
		}
		pats, err := parsePatterns([]string{pat})
		if err != nil {
			return
		}
		parts := splitPath(p)
		matchAny(pats, parts)
		childMayMatch(pats, parts)
	})
}
