//go:build linux

package restore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/vmdk"
)

// TestVerifySparseTarget checks that verification reads only the
// allocated ranges of a sparse file or an image, and still finds
// differences in both data and holes.
func TestVerifySparseTarget(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(8)
	d, chunks := makeDisk(t, s, content, 100)
	ctx := context.Background()
	opts := DiskOptions{BlobID: s.BlobID}

	path := filepath.Join(t.TempDir(), "sparse.raw")
	w := newRawWriter(t, path, d.Size)
	if _, err := Disk(ctx, s, d, w, opts); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if alloc := blocks(t, path); alloc > d.DataBytes+1<<20 {
		if os.Getenv("CI") != "" {
			t.Fatalf("file system does not keep holes (%d bytes allocated), and CI is set", alloc)
		}
		t.Skipf("file system does not keep holes (%d bytes allocated)", alloc)
	}
	st, err := VerifyDisk(ctx, s, d, openRW(t, path), opts)
	if err != nil || st.Digest != d.Digest {
		t.Fatalf("verify: %+v, %v", st, err)
	}
	if st.BytesRead > d.DataBytes+int64(len(chunks))*8192 || st.BytesRead < d.DataBytes {
		t.Errorf("read %d bytes of a target holding %d bytes of data", st.BytesRead, d.DataBytes)
	}

	// Data in a hole of the snapshot, and a chunk turned into a hole.
	f := openRW(t, path)
	if _, err := f.WriteAt([]byte{1}, 12<<20+5); err != nil {
		t.Fatal(err)
	}
	c := chunks[3]
	if err := punchHole(f, int64(c.Offset), int64(c.Length)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("punch hole: %v", err)
		}
		t.Skipf("punch hole: %v", err)
	}
	st, err = VerifyDisk(ctx, s, d, f, opts)
	if !errors.Is(err, ErrDigestMismatch) || len(st.Mismatches) != 2 {
		t.Errorf("damaged sparse target: %v, mismatches %v", err, st.Mismatches)
	}

	// A short file is an error, not a pass.
	short := writeTarget(t, content[:len(content)-1])
	if _, err := VerifyDisk(ctx, s, d, openRW(t, short), opts); err == nil {
		t.Error("verify of a short file passed")
	}

	// A VMDK: read through the image, its extents tell the holes.
	vpath := filepath.Join(t.TempDir(), "disk.vmdk")
	vw, err := vmdk.Create(vpath, d.Size, "streamOptimized")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Disk(ctx, s, d, vw, opts); err != nil {
		t.Fatal(err)
	}
	if err := vw.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := vmdisk.Open(vpath, "vmdk", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	st, err = VerifyDisk(ctx, s, d, img, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesRead >= d.Size/2 {
		t.Errorf("read %d bytes of a %d-byte VMDK holding %d bytes of data", st.BytesRead, d.Size, d.DataBytes)
	}
	// A partition's range of the image.
	start, length := int64(1<<20), int64(8<<20)
	part := bytes.NewReader(content[start : start+length])
	if _, err := VerifyDiskRange(ctx, s, d, start, length, part, opts); err != nil {
		t.Errorf("verify range from memory: %v", err)
	}
	ppath := filepath.Join(t.TempDir(), "part.raw")
	pw := newRawWriter(t, ppath, length)
	if _, err := DiskRange(ctx, s, d, start, length, pw, opts); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pf, err := os.Open(ppath)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	st, err = VerifyDiskRange(ctx, s, d, start, length, pf, opts)
	if err != nil || st.BytesRead > length-1<<20 {
		t.Errorf("verify range of a sparse file: read %d, %v", st.BytesRead, err)
	}
}

// TestDiskDeltaRange updates a partition image in place.
func TestDiskDeltaRange(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(9)
	d, _ := makeDisk(t, s, content, 100)
	ctx := context.Background()
	opts := DiskOptions{BlobID: s.BlobID}
	start, length := int64(1<<20+100), int64(10<<20+7)
	old := bytes.Clone(content[start : start+length])
	for _, off := range []int{0, 5, 3 << 20, 6<<20 - 4096, int(length) - 1} {
		old[off] ^= 0x33
	}
	path := writeTarget(t, old)
	st, err := DiskDeltaRange(ctx, s, d, start, length, openRW(t, path), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, path), content[start:start+length]) {
		t.Fatal("partition differs after a delta restore")
	}
	if st.BlocksChanged != 4 || st.BytesWritten+st.ZeroedBytes > 4*4096 {
		t.Errorf("stats %+v", st)
	}
	if _, err := DiskDeltaRange(ctx, s, d, d.Size-10, 11, openRW(t, path), opts); err == nil {
		t.Error("range beyond the disk accepted")
	}
}
