//go:build linux

package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
)

const diskSize = 24<<20 + 4096

// makeDiskContent returns a disk with data regions, all-zero regions and
// an unaligned end.
func makeDiskContent(seed uint64) []byte {
	r := mrand.New(mrand.NewPCG(seed, 7))
	b := make([]byte, diskSize)
	for _, reg := range []struct{ off, n int }{
		{0, 1 << 20},              // boot area, partition table
		{1<<20 + 4096, 3 << 20},   // a partition's start
		{6 << 20, 5<<20 + 777},    // scattered data
		{14<<20 + 100, 2 << 20},   // unaligned
		{diskSize - 70000, 70000}, // up to the end (a GPT backup header)
	} {
		copy(b[reg.off:], compressibleBytes(r, reg.n/2))
		for i := reg.off + reg.n/2; i < reg.off+reg.n; i++ {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

// makeDisk chunks content into pieces of 8-40 KiB (all-zero pieces become
// holes) and stores it as a disk whose chunk list blobs hold perList
// entries.
func makeDisk(t testing.TB, s store, content []byte, perList int) (*repo.Disk, []repo.DiskChunk) {
	t.Helper()
	r := mrand.New(mrand.NewPCG(3, 4))
	var chunks []repo.DiskChunk
	var data int64
	for off := 0; off < len(content); {
		n := min(8<<10+r.IntN(32<<10), len(content)-off)
		b := content[off : off+n]
		if !allZero(b) {
			chunks = append(chunks, repo.DiskChunk{Offset: uint64(off), Length: uint32(n), ID: s.saveData(b)})
			data += int64(n)
		}
		off += n
	}
	dg := vmdisk.NewDigest()
	dg.Write(content)
	digest := dg.Sum()
	d := &repo.Disk{
		Name: "sda", Source: "/dev/sda", Format: "raw", Size: int64(len(content)), SectorSize: 512,
		Digest: digest, ChunkLists: s.saveChunkList(chunks, perList),
		Chunks: uint64(len(chunks)), DataBytes: data,
	}
	return d, chunks
}

// rawWriter is a vmdisk.Writer over a sparse file that insists on
// ascending, non-overlapping writes.
type rawWriter struct {
	f    *os.File
	size int64
	mu   sync.Mutex
	end  int64
}

func newRawWriter(t testing.TB, path string, size int64) *rawWriter {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return &rawWriter{f: f, size: size}
}

func (w *rawWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if off < w.end {
		return 0, fmt.Errorf("write at %d before the end of the previous write (%d)", off, w.end)
	}
	if off+int64(len(p)) > w.size {
		return 0, fmt.Errorf("write beyond the end")
	}
	w.end = off + int64(len(p))
	return w.f.WriteAt(p, off)
}
func (w *rawWriter) Size() int64  { return w.size }
func (w *rawWriter) Close() error { return w.f.Close() }

var _ vmdisk.Writer = (*rawWriter)(nil)

func TestDiskRestore(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(1)
	d, chunks := makeDisk(t, s, content, 100)
	if len(d.ChunkLists) < 5 {
		t.Fatalf("only %d chunk lists", len(d.ChunkLists))
	}
	for _, workers := range []int{1, 2, 8} {
		path := filepath.Join(t.TempDir(), "disk.raw")
		w := newRawWriter(t, path, d.Size)
		var prog countingProgress
		st, err := Disk(context.Background(), s, d, w, DiskOptions{Workers: workers, Progress: &prog})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, path), content) {
			t.Fatal("restored disk differs")
		}
		if st.Digest != d.Digest || st.BytesWritten != d.DataBytes || st.HoleBytes != d.Size-d.DataBytes ||
			st.Chunks != uint64(len(chunks)) || st.ChunksWritten != st.Chunks {
			t.Errorf("stats %+v", st)
		}
		if got := blocks(t, path); got > d.DataBytes+64<<10 || got < d.DataBytes {
			t.Errorf("restored file allocates %d bytes for %d bytes of data", got, d.DataBytes)
		}
		if prog.items.Load() != int64(d.Chunks) || prog.bytes.Load() != d.Size || prog.totalBytes.Load() != d.Size {
			t.Errorf("progress %d items %d bytes", prog.items.Load(), prog.bytes.Load())
		}
	}
}

func TestDiskDigestMismatch(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(1)
	d, _ := makeDisk(t, s, content, 1000)
	d.Digest = strings.Repeat("0", 64)
	w := newRawWriter(t, filepath.Join(t.TempDir(), "disk.raw"), d.Size)
	defer w.Close()
	_, err := Disk(context.Background(), s, d, w, DiskOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	small := newRawWriter(t, filepath.Join(t.TempDir(), "small.raw"), d.Size-512)
	defer small.Close()
	if _, err := Disk(context.Background(), s, d, small, DiskOptions{}); err == nil || !strings.Contains(err.Error(), "smaller than the disk") {
		t.Errorf("restore to a smaller target: %v", err)
	}
	if small.end != 0 {
		t.Error("wrote to a target that is too small")
	}
}

func TestDiskDamagedBlob(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(1)
	d, chunks := makeDisk(t, s, content, 1000)
	bad := chunks[len(chunks)/2]
	s.damaged[bad.ID] = true

	w := newRawWriter(t, filepath.Join(t.TempDir(), "disk.raw"), d.Size)
	_, err := Disk(context.Background(), s, d, w, DiskOptions{})
	w.Close()
	if err == nil || !strings.Contains(err.Error(), "ciphertext verification failed") {
		t.Fatalf("err = %v", err)
	}

	path := filepath.Join(t.TempDir(), "disk.raw")
	w = newRawWriter(t, path, d.Size)
	var reported []string
	st, err := Disk(context.Background(), s, d, w, DiskOptions{OnError: func(p string, err error) error {
		reported = append(reported, p)
		return nil
	}})
	w.Close()
	want := fmt.Sprintf("disk:sda@%d-%d", bad.Offset, bad.Offset+uint64(bad.Length))
	var ie *IncompleteError
	if !errors.As(err, &ie) || len(ie.Failed) != 1 || ie.Failed[0].Path != want || strings.Join(reported, ",") != want {
		t.Fatalf("err = %v, reported %v; want %s", err, reported, want)
	}
	if st.BytesWritten != d.DataBytes-int64(bad.Length) {
		t.Errorf("wrote %d bytes, want %d", st.BytesWritten, d.DataBytes-int64(bad.Length))
	}
	got := readAll(t, path)
	end := bad.Offset + uint64(bad.Length)
	if !bytes.Equal(got[:bad.Offset], content[:bad.Offset]) || !bytes.Equal(got[end:], content[end:]) {
		t.Error("the rest of the disk was not restored")
	}
}

func TestDiskRangeAndDump(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(2)
	d, _ := makeDisk(t, s, content, 50)
	ctx := context.Background()
	for _, rg := range []struct{ start, length int64 }{
		{1<<20 + 4096, 3 << 20},    // a partition starting at data
		{1 << 20, 5<<20 + 1234},    // starting in a hole, unaligned end
		{12345, 9 << 20},           // starting inside a chunk
		{0, diskSize},              // the whole disk
		{diskSize - 512, 512},      // the last sector
		{diskSize - 8192, 0},       // empty
		{11<<20 + 1000, 3<<20 - 1}, // ending in a hole
	} {
		path := filepath.Join(t.TempDir(), "part.raw")
		w := newRawWriter(t, path, rg.length)
		st, err := DiskRange(ctx, s, d, rg.start, rg.length, w, DiskOptions{})
		w.Close()
		if err != nil {
			t.Fatalf("range %+v: %v", rg, err)
		}
		want := content[rg.start : rg.start+rg.length]
		got := readAll(t, path)
		if !bytes.Equal(got, want) {
			t.Errorf("range %+v: restored bytes differ", rg)
		}
		vopts := DiskOptions{BlobID: s.BlobID}
		if _, err := VerifyDiskRange(ctx, s, d, rg.start, rg.length, bytes.NewReader(got), vopts); err != nil {
			t.Errorf("range %+v: verify: %v", rg, err)
		}
		if rg.length > 0 {
			// A flipped first and last byte (in partial chunks or
			// holes) are found, in the target's offsets.
			got[0] ^= 1
			got[len(got)-1] ^= 1
			vst, err := VerifyDiskRange(ctx, s, d, rg.start, rg.length, bytes.NewReader(got), vopts)
			if !errors.Is(err, ErrDigestMismatch) || len(vst.Mismatches) == 0 || vst.Mismatches[0].Offset != 0 ||
				vst.Mismatches[len(vst.Mismatches)-1].End() != rg.length {
				t.Errorf("range %+v: verify of a damaged target: %v, %v", rg, vst.Mismatches, err)
			}
		}
		nz := int64(0)
		if st.BytesWritten+st.HoleBytes != rg.length {
			t.Errorf("range %+v: %d bytes written + %d hole bytes", rg, st.BytesWritten, st.HoleBytes)
		}
		_ = nz
		var buf bytes.Buffer
		if err := DumpDisk(ctx, s, d, rg.start, rg.length, &buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("range %+v: dumped bytes differ", rg)
		}
	}
	for _, rg := range [][2]int64{{-1, 10}, {0, diskSize + 1}, {diskSize, 1}, {10, -1}} {
		if _, err := DiskRange(ctx, s, d, rg[0], rg[1], &bytesWriterAt{}, DiskOptions{}); err == nil {
			t.Errorf("range %v accepted", rg)
		}
		if err := DumpDisk(ctx, s, d, rg[0], rg[1], io.Discard); err == nil {
			t.Errorf("dump range %v accepted", rg)
		}
	}
}

func TestDiskReader(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(3)
	d, chunks := makeDisk(t, s, content, 37)
	img := DiskReader(context.Background(), s, d)
	defer img.Close()
	var _ vmdisk.Image = img
	if img.Size() != diskSize || img.SectorSize() != 512 {
		t.Errorf("size %d sector %d", img.Size(), img.SectorSize())
	}
	r := mrand.New(mrand.NewPCG(9, 9))
	for i := range 400 {
		off := r.Int64N(diskSize)
		n := r.IntN(200 << 10)
		if i%4 == 0 {
			n = 512
		}
		buf := make([]byte, n)
		for j := range buf {
			buf[j] = 0xAA
		}
		got, err := img.ReadAt(buf, off)
		wantN := min(int64(n), diskSize-off)
		if int64(got) != wantN || (err != nil && !(err == io.EOF && wantN < int64(n))) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, got, err)
		}
		if !bytes.Equal(buf[:got], content[off:off+wantN]) {
			t.Fatalf("ReadAt(%d, %d): wrong bytes", n, off)
		}
	}
	if n, err := img.ReadAt(make([]byte, 10), diskSize); n != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v", n, err)
	}
	// A partition read through a section reader, as the volumes command does.
	sec := io.NewSectionReader(img, 1<<20+4096, 3<<20)
	all, err := io.ReadAll(sec)
	if err != nil || !bytes.Equal(all, content[1<<20+4096:4<<20+4096]) {
		t.Errorf("section read: %v", err)
	}
	ext, err := img.Extents()
	if err != nil {
		t.Fatal(err)
	}
	var covered int64
	for i, e := range ext {
		covered += e.Length
		if i > 0 && ext[i-1].End() >= e.Offset {
			t.Errorf("extents %v and %v not coalesced", ext[i-1], e)
		}
	}
	if covered != d.DataBytes || ext[0].Offset != int64(chunks[0].Offset) {
		t.Errorf("extents cover %d bytes, want %d", covered, d.DataBytes)
	}
	// Concurrent readers.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for off := int64(g) * 4096; off < diskSize; off += 1 << 20 {
				n, _ := img.ReadAt(buf, off)
				if !bytes.Equal(buf[:n], content[off:off+int64(n)]) {
					t.Errorf("concurrent read at %d differs", off)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// writeTarget writes content to a fully allocated file.
func writeTarget(t testing.TB, content []byte) string {
	path := filepath.Join(t.TempDir(), "target.raw")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openRW(t testing.TB, path string) *os.File {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestDiskDelta(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(4)
	d, chunks := makeDisk(t, s, content, 200)
	ctx := context.Background()
	opts := DiskOptions{BlobID: s.BlobID}

	t.Run("identical", func(t *testing.T) {
		path := writeTarget(t, content)
		loads := s.loads.Load()
		st, err := DiskDelta(ctx, s, d, openRW(t, path), opts)
		if err != nil {
			t.Fatal(err)
		}
		if st.BytesWritten != 0 || st.ChunksWritten != 0 || st.ZeroedBytes != 0 || st.BytesRead != d.Size || s.loads.Load() != loads {
			t.Errorf("stats %+v, %d blobs loaded", st, s.loads.Load()-loads)
		}
	})

	t.Run("two percent", func(t *testing.T) {
		old := bytes.Clone(content)
		r := mrand.New(mrand.NewPCG(5, 6))
		k := len(chunks) * 2 / 100
		changed := map[int]bool{}
		var want int64
		for len(changed) < k {
			i := r.IntN(len(chunks))
			if changed[i] {
				continue
			}
			changed[i] = true
			c := chunks[i]
			pos := int64(c.Offset) + int64(r.IntN(int(c.Length)))
			old[pos] ^= 0x5a
			// One 4 KiB block of the disk changed, cut by the chunk's edges.
			lo, hi := max(pos/4096*4096, int64(c.Offset)), min(pos/4096*4096+4096, int64(c.Offset)+int64(c.Length))
			want += hi - lo
		}
		// Garbage in two holes: one 4 KiB block, and 3 bytes straddling
		// a block boundary.
		hole := int64(5 << 20)
		copy(old[hole:], bytes.Repeat([]byte{1}, 4096))
		copy(old[12<<20+4094:], []byte{7, 7, 7})
		path := writeTarget(t, old)
		loads := s.loads.Load()
		st, err := DiskDelta(ctx, s, d, openRW(t, path), opts)
		if err != nil {
			t.Fatal(err)
		}
		// Only the changed blocks are written: the written bytes equal the
		// changed bytes rounded to 4 KiB blocks.
		if st.ChunksWritten != uint64(k) || st.BytesWritten != want || st.Chunks != uint64(len(chunks)) || st.BlocksChanged != int64(k)+3 {
			t.Errorf("wrote %d chunks, %d bytes, %d blocks; want %d, %d, %d", st.ChunksWritten, st.BytesWritten, st.BlocksChanged, k, want, k+3)
		}
		if st.ZeroedBytes != 3*4096 || st.PunchedBytes != 3*4096 || st.BytesRead != d.Size {
			t.Errorf("zeroed %d punched %d read %d", st.ZeroedBytes, st.PunchedBytes, st.BytesRead)
		}
		if s.loads.Load()-loads != int64(k) {
			t.Errorf("loaded %d blobs, want %d", s.loads.Load()-loads, k)
		}
		if !bytes.Equal(readAll(t, path), content) {
			t.Error("target differs from the disk after a delta restore")
		}
		t.Logf("%d of %d chunks changed: wrote %d of %d bytes (%.2f%%)", k, len(chunks), st.BytesWritten, d.Size, 100*float64(st.BytesWritten)/float64(d.Size))
		if _, err := VerifyDisk(ctx, s, d, openRW(t, path), opts); err != nil {
			t.Error(err)
		}
	})

	t.Run("empty sparse file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.raw")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := DiskDelta(ctx, s, d, f, opts)
		if err != nil {
			t.Fatal(err)
		}
		// Nothing to read: the extended file is all hole.
		// Blocks of zeros inside chunks need no writing either.
		if st.BytesRead != 0 || st.BytesWritten > d.DataBytes || st.BytesWritten < d.DataBytes*9/10 || st.ChunksWritten != d.Chunks {
			t.Errorf("stats %+v", st)
		}
		if !bytes.Equal(readAll(t, path), content) {
			t.Error("target differs")
		}
		if got := blocks(t, path); got > d.DataBytes+64<<10 {
			t.Errorf("target allocates %d bytes for %d of data", got, d.DataBytes)
		}
	})

	t.Run("larger file", func(t *testing.T) {
		path := writeTarget(t, append(bytes.Clone(content), randBytes(100000)...))
		if _, err := DiskDelta(ctx, s, d, openRW(t, path), opts); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, path), content) {
			t.Error("target not truncated to the disk")
		}
	})

	t.Run("damaged blob", func(t *testing.T) {
		old := bytes.Clone(content)
		c := chunks[7]
		old[c.Offset] ^= 1
		s.damaged[c.ID] = true
		defer delete(s.damaged, c.ID)
		path := writeTarget(t, old)
		o := opts
		var reported []string
		o.OnError = func(p string, err error) error { reported = append(reported, p); return nil }
		_, err := DiskDelta(ctx, s, d, openRW(t, path), o)
		var ie *IncompleteError
		if !errors.As(err, &ie) || len(reported) != 1 || reported[0] != fmt.Sprintf("disk:sda@%d-%d", c.Offset, c.Offset+uint64(c.Length)) {
			t.Errorf("err = %v, reported %v", err, reported)
		}
	})

	if _, err := DiskDelta(ctx, s, d, openRW(t, writeTarget(t, content)), DiskOptions{}); err == nil {
		t.Error("delta restore without a blob id function")
	}
}

func TestVerifyDisk(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(5)
	d, chunks := makeDisk(t, s, content, 300)
	ctx := context.Background()
	opts := DiskOptions{BlobID: s.BlobID}
	st, err := VerifyDisk(ctx, s, d, bytes.NewReader(content), opts)
	if err != nil || st.Digest != d.Digest || st.BytesRead != d.Size || st.Chunks != d.Chunks {
		t.Fatalf("verify of the right content: %+v, %v", st, err)
	}
	bad := bytes.Clone(content)
	c := chunks[42]
	bad[c.Offset+100] ^= 1
	bad[diskSize/2+13<<20/2] = 9 // in a hole? check below
	_, err = VerifyDisk(ctx, s, d, bytes.NewReader(bad), opts)
	st, err = VerifyDisk(ctx, s, d, bytes.NewReader(bad), opts)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v", err)
	}
	if len(st.Mismatches) != 2 || st.Mismatches[0] != (vmdisk.Extent{Offset: int64(c.Offset), Length: int64(c.Length)}) {
		t.Errorf("mismatches %v", st.Mismatches)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("differing ranges: %d+%d", c.Offset, c.Length)) {
		t.Errorf("message %q", err)
	}
	// Without blob ids only the digest says something is wrong.
	st, err = VerifyDisk(ctx, s, d, bytes.NewReader(bad), DiskOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("err = %v", err)
	}
	// A short target.
	if _, err := VerifyDisk(ctx, s, d, bytes.NewReader(content[:diskSize-1]), opts); err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short target: %v", err)
	}
}

func TestDiskCancel(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(8)
	d, _ := makeDisk(t, s, content, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newRawWriter(t, filepath.Join(t.TempDir(), "disk.raw"), d.Size)
	defer w.Close()
	if _, err := Disk(ctx, s, d, w, DiskOptions{Progress: &cancelProgress{cancel: cancel}}); !errors.Is(err, context.Canceled) {
		t.Errorf("disk: err = %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	_, err := DiskDelta(ctx, s, d, openRW(t, writeTarget(t, make([]byte, 100))), DiskOptions{BlobID: s.BlobID, Progress: &cancelProgress{cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("delta: err = %v", err)
	}
}
