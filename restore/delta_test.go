//go:build linux

package restore

import (
	"bytes"
	"context"
	mrand "math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBatchGen checks that batches are the spans in order, adjacent runs
// of at most the limit, each as long as the limit allows.
func TestBatchGen(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	var spans []span
	for off := int64(0); off < 50<<20; {
		n := int64(1 + r.IntN(300<<10))
		if r.IntN(10) == 0 {
			n = int64(1 + r.IntN(6<<20))
		}
		spans = append(spans, span{off: off, n: n, hole: r.IntN(3) == 0})
		off += n
	}
	gen := func(ctx context.Context, emit func(span) error) error {
		for _, s := range spans {
			if err := emit(s); err != nil {
				return err
			}
		}
		return nil
	}
	const limit = 1 << 20
	var got []span
	var prev []span
	err := batchGen(gen, limit)(context.Background(), func(b []span) error {
		if len(b) == 0 {
			t.Fatal("empty batch")
		}
		lo, hi := b[0].off, b[len(b)-1].off+b[len(b)-1].n
		if len(b) > 1 && hi-lo > limit {
			t.Errorf("batch %d+%d of %d spans exceeds the limit", lo, hi-lo, len(b))
		}
		if prev != nil && hi-prev[0].off <= limit {
			t.Errorf("batch at %d could have joined the previous one", lo)
		}
		prev = b
		got = append(got, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(spans) {
		t.Fatalf("%d spans in batches, want %d", len(got), len(spans))
	}
	for i := range got {
		if got[i] != spans[i] {
			t.Fatalf("span %d: %+v, want %+v", i, got[i], spans[i])
		}
	}
}

// TestDiskDeltaSmallHoles restores onto a target where holes of the disk
// shorter than a batch hold garbage, chunks differ and parts of the
// target are sparse, so batches mix chunks, holes and target holes.
func TestDiskDeltaSmallHoles(t *testing.T) {
	s := newFakeRepo()
	r := mrand.New(mrand.NewPCG(8, 9))
	content := make([]byte, 6<<20+1234)
	// 48 KiB of data, then 48 KiB of zeros: pieces of 8-40 KiB (see
	// makeDisk) that fall in the zeros become holes between chunks.
	for off := 0; off < len(content); off += 96 << 10 {
		copy(content[off:min(off+48<<10, len(content))], compressibleBytes(r, 48<<10))
	}
	d, chunks := makeDisk(t, s, content, 100)
	old := bytes.Clone(content)
	for off := 48<<10 + 20000; off < len(old); off += 96 << 10 {
		copy(old[off:], bytes.Repeat([]byte{0xaa}, 100))
	}
	for i := 3; i < len(chunks); i += 17 {
		old[chunks[i].Offset+uint64(chunks[i].Length)/2] ^= 1
	}
	path := writeTarget(t, old)
	f := openRW(t, path)
	// Sparse parts of the target: one inside a run of data, one that
	// covers a hole of the disk and the data around it.
	for _, p := range [][2]int64{{1 << 20, 64 << 10}, {3<<20 + 32<<10, 128 << 10}} {
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, p[0], p[1]); err != nil {
			t.Skipf("punch hole: %v", err)
		}
	}
	opts := DiskOptions{BlobID: s.BlobID}
	st, err := DiskDelta(context.Background(), s, d, f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, path), content) {
		t.Fatal("target differs from the disk after a delta restore")
	}
	if st.ZeroedBytes == 0 || st.ChunksWritten == 0 || st.BytesWritten >= d.DataBytes/2 || st.BytesRead >= d.Size {
		t.Errorf("stats %+v", st)
	}
	if _, err := VerifyDisk(context.Background(), s, d, openRW(t, path), opts); err != nil {
		t.Error(err)
	}
	// A second delta finds nothing to do.
	st, err = DiskDelta(context.Background(), s, d, openRW(t, path), opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesWritten != 0 || st.ZeroedBytes != 0 || st.ChunksWritten != 0 || st.BlocksChanged != 0 {
		t.Errorf("second delta: %+v", st)
	}
}
