package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bunkerbackup/bunker/chunk"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
	_ "github.com/bunkerbackup/bunker/vmdisk/raw"
)

// memImage is a disk in memory whose allocated extents are the blocks of
// a given granularity that hold any non-zero byte (and optionally some
// all-zero blocks, as mkfs leaves them). Unallocated ranges read as zeros
// without touching data, like a real container.
type memImage struct {
	data    []byte
	extents []vmdisk.Extent
	reads   atomic.Int64
	failAt  int64  // ReadAt at this offset fails (0 = never)
	format  string // Info().Format; "test" when empty
}

func newMemImage(data []byte, grain int64, zeroAllocated bool) *memImage {
	im := &memImage{data: data}
	size := int64(len(data))
	for off := int64(0); off < size; off += grain {
		end := min(off+grain, size)
		if !zeroAllocated && chunk.IsZero(data[off:end]) {
			continue
		}
		if k := len(im.extents); k > 0 && im.extents[k-1].End() == off {
			im.extents[k-1].Length += end - off
		} else {
			im.extents = append(im.extents, vmdisk.Extent{Offset: off, Length: end - off})
		}
	}
	return im
}

func (im *memImage) ReadAt(p []byte, off int64) (int, error) {
	im.reads.Add(1)
	if im.failAt != 0 && off <= im.failAt && im.failAt < off+int64(len(p)) {
		return 0, errors.New("injected read error")
	}
	if off >= int64(len(im.data)) {
		return 0, io.EOF
	}
	clear(p)
	end := off + int64(len(p))
	for _, e := range im.extents {
		s, t := max(e.Offset, off), min(e.End(), end)
		if s < t {
			copy(p[s-off:t-off], im.data[s:t])
		}
	}
	if end > int64(len(im.data)) {
		return int(int64(len(im.data)) - off), io.EOF
	}
	return len(p), nil
}

func (im *memImage) Size() int64                       { return int64(len(im.data)) }
func (im *memImage) SectorSize() int                   { return 512 }
func (im *memImage) Extents() ([]vmdisk.Extent, error) { return im.extents, nil }
func (im *memImage) Info() vmdisk.Info {
	if im.format == "" {
		return vmdisk.Info{Format: "test"}
	}
	return vmdisk.Info{Format: im.format}
}
func (im *memImage) Close() error { return nil }

// diskContent builds a disk: filesystem-like data with zero gaps of many
// sizes, some not sector aligned, and a large empty tail.
func diskContent(size int) []byte {
	d := make([]byte, size)
	off := 0
	seed := uint64(1)
	for off < size*3/4 {
		n := 512 * (1 + int(seed*7919)%900)
		copy(d[off:], randomBytes(min(n, size-off), seed))
		if seed%3 == 0 {
			copy(d[off:], textBytes(min(n, size-off), seed))
		}
		gaps := []int{512, 4096, 60 << 10, 64 << 10, 200 << 10, 1<<20 + 512, 3 << 20}
		off += n + gaps[seed%uint64(len(gaps))]
		seed++
	}
	return d
}

func chunkList(t *testing.T, r *repo.Repository, d repo.Disk) []repo.DiskChunk {
	t.Helper()
	var out []repo.DiskChunk
	if err := r.LoadChunkList(context.Background(), d.ChunkLists, func(c repo.DiskChunk) error {
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDiskCanonical(t *testing.T) {
	data := diskContent(48 << 20)
	sum := diskDigest(data)
	r, be := newRepo(t)
	ctx := context.Background()

	var first []repo.DiskChunk
	var firstAdded uint64
	for i, im := range []*memImage{
		newMemImage(data, 4096, false),   // raw file, 4 KiB fs blocks
		newMemImage(data, 64<<10, false), // VMDK grains, qcow2 clusters
		newMemImage(data, 2<<20, false),  // VHD blocks
		newMemImage(data, 1<<20, true),   // fully allocated
		newMemImage(data, 512, false),    // sector granularity
		newMemImage(data, 3<<20+512, false),
	} {
		sn, err := Disks(ctx, r, []DiskSource{{Name: "vm", Image: im}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sn.Disks) != 1 {
			t.Fatalf("%d disks", len(sn.Disks))
		}
		d := sn.Disks[0]
		if d.Digest != sum {
			t.Errorf("image %d: digest %s, want %x", i, d.Digest, sum)
		}
		if d.Size != int64(len(data)) || d.SectorSize != 512 || d.Format != "test" || d.Name != "vm" {
			t.Errorf("image %d: disk %+v", i, d)
		}
		list := chunkList(t, r, d)
		if uint64(len(list)) != d.Chunks {
			t.Errorf("image %d: %d chunks, record says %d", i, len(list), d.Chunks)
		}
		// The chunk list reproduces the disk.
		got := make([]byte, len(data))
		var covered int64
		for k, c := range list {
			if k > 0 && c.Offset < list[k-1].Offset+uint64(list[k-1].Length) {
				t.Fatalf("image %d: chunks overlap at %d", i, c.Offset)
			}
			b, err := r.LoadBlob(ctx, repo.DataBlob, c.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != int(c.Length) || chunk.IsZero(b) {
				t.Fatalf("image %d: chunk at %d: %d bytes, zero %v", i, c.Offset, len(b), chunk.IsZero(b))
			}
			copy(got[c.Offset:], b)
			covered += int64(c.Length)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("image %d: chunk list does not reproduce the disk", i)
		}
		if covered != d.DataBytes || covered >= int64(len(data))*3/4 {
			t.Errorf("image %d: data bytes %d (record %d) of %d", i, covered, d.DataBytes, len(data))
		}
		if i == 0 {
			first = list
			firstAdded = sn.Summary.DataAdded
			if firstAdded == 0 {
				t.Error("first backup added nothing")
			}
			continue
		}
		if len(list) != len(first) {
			t.Fatalf("image %d: %d chunks, first image %d", i, len(list), len(first))
		}
		for k := range list {
			if list[k] != first[k] {
				t.Fatalf("image %d: chunk %d differs: %+v vs %+v", i, k, list[k], first[k])
			}
		}
		if sn.Summary.DataAdded != 0 {
			t.Errorf("image %d: added %d bytes of data", i, sn.Summary.DataAdded)
		}
	}

	// The stored snapshot holds the disk.
	r = reopen(t, be)
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 6 || len(snaps[0].Disks) != 1 || snaps[0].Tree != nil {
		t.Fatalf("snapshots %v %+v", err, snaps)
	}
}

func TestDiskHolesCostNothing(t *testing.T) {
	// 256 MiB disk, 2 MiB of data at 200 MiB, the rest never allocated.
	const size = 256 << 20
	data := make([]byte, size)
	copy(data[200<<20:], randomBytes(2<<20, 5))
	im := newMemImage(data, 64<<10, false)
	r, _ := newRepo(t)
	sn, err := Disks(context.Background(), r, []DiskSource{{Name: "sparse", Image: im}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := sn.Disks[0]
	if d.DataBytes != 2<<20 || sn.Summary.DataAdded != 2<<20 {
		t.Errorf("data bytes %d, added %d", d.DataBytes, sn.Summary.DataAdded)
	}
	if n := im.reads.Load(); n > 4 {
		t.Errorf("%d reads for 2 MiB of data", n)
	}
	sum := diskDigest(data)
	if d.Digest != sum {
		t.Errorf("digest %s, want %x", d.Digest, sum)
	}
}

func TestDiskEmpty(t *testing.T) {
	im := newMemImage(make([]byte, 8<<20), 64<<10, true)
	r, _ := newRepo(t)
	sn, err := Disks(context.Background(), r, []DiskSource{{Name: "zero", Image: im}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := sn.Disks[0]; d.Chunks != 0 || d.DataBytes != 0 || len(d.ChunkLists) != 0 || sn.Summary.DataAdded != 0 {
		t.Errorf("all-zero disk: %+v", d)
	}
}

func TestDiskManyChunkLists(t *testing.T) {
	// More chunks than fit in one chunk-list blob: small chunker
	// parameters via a repository made for it.
	data := randomBytes(40<<20, 9)
	be := newRepoWith(t, repo.ChunkerParams{Min: 512, AvgBits: 10, Max: 4096})
	r := be
	im := newMemImage(data, 1<<20, false)
	sn, err := Disks(context.Background(), r, []DiskSource{{Name: "d", Image: im}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := sn.Disks[0]
	if d.Chunks <= repo.MaxChunkListRecords || len(d.ChunkLists) != int((d.Chunks+repo.MaxChunkListRecords-1)/repo.MaxChunkListRecords) {
		t.Fatalf("%d chunks in %d lists", d.Chunks, len(d.ChunkLists))
	}
	var off uint64
	for _, c := range chunkList(t, r, d) {
		if c.Offset != off {
			t.Fatalf("chunk at %d, want %d", c.Offset, off)
		}
		off += uint64(c.Length)
	}
	if off != uint64(len(data)) {
		t.Errorf("chunks cover %d of %d", off, len(data))
	}
}

func newRepoWith(t testing.TB, disk repo.ChunkerParams) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), memBackend(), "secret", repo.InitOptions{DiskChunker: disk})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDiskIncrementalAndRaw(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.img")
	data := diskContent(16 << 20)
	writeFile(t, p, data)
	r, _ := newRepo(t)
	ctx := context.Background()
	first, err := Disks(ctx, r, []DiskSource{{Path: p}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := first.Disks[0]
	fi, _ := os.Stat(p)
	if d.Name != "disk.img" || d.Format != "raw" || d.Source != p || d.SourceSize != fi.Size() || !d.SourceMtime.Equal(fi.ModTime()) || d.SourceInode != inodeOf(fi) || d.ChangedDuringRead || d.CrashConsistent {
		t.Errorf("disk record %+v", d)
	}
	sum := diskDigest(data)
	if d.Digest != sum {
		t.Errorf("digest %s", d.Digest)
	}

	// Unchanged: the parent's record is reused; the image is not read.
	im := newMemImage(data, 4096, false)
	im.format = "raw" // the same file, read as the same format
	second, err := Disks(ctx, r, []DiskSource{{Path: p, Image: im}}, Options{Parent: first})
	if err != nil {
		t.Fatal(err)
	}
	if im.reads.Load() != 0 {
		t.Errorf("unchanged image read %d times", im.reads.Load())
	}
	if d2 := second.Disks[0]; d2.Digest != d.Digest || len(d2.ChunkLists) != len(d.ChunkLists) || d2.ChunkLists[0] != d.ChunkLists[0] {
		t.Errorf("reused record %+v", d2)
	}

	// Changed: read again; only the changed region is new data.
	copy(data[5<<20:], randomBytes(8192, 77))
	writeFile(t, p, data)
	third, err := Disks(ctx, r, []DiskSource{{Path: p}}, Options{Parent: second})
	if err != nil {
		t.Fatal(err)
	}
	if added := third.Summary.DataAdded; added == 0 || added > 2<<20 {
		t.Errorf("changed 8 KiB, added %d bytes", added)
	}
	sum = diskDigest(data)
	if third.Disks[0].Digest != sum {
		t.Errorf("digest after change %s", third.Disks[0].Digest)
	}
}

func TestDiskErrors(t *testing.T) {
	r, be := newRepo(t)
	ctx := context.Background()
	data := randomBytes(8<<20, 1)
	im := newMemImage(data, 1<<20, false)
	im.failAt = 5 << 20
	if _, err := Disks(ctx, r, []DiskSource{{Name: "bad", Image: im}}, Options{}); err == nil {
		t.Error("read error not reported")
	}
	if _, err := Disks(ctx, r, []DiskSource{{Path: filepath.Join(t.TempDir(), "missing.img")}}, Options{}); err == nil {
		t.Error("missing image accepted")
	}
	a, b := newMemImage(data, 1<<20, false), newMemImage(data, 1<<20, false)
	if _, err := Disks(ctx, r, []DiskSource{{Name: "x", Image: a}, {Name: "x", Image: b}}, Options{}); err == nil {
		t.Error("duplicate disk names accepted")
	}
	if snaps, _ := reopen(t, be).Snapshots(ctx); len(snaps) != 0 {
		t.Errorf("%d snapshots written", len(snaps))
	}
}
