// Package disktest tests disk restores into the real container writers of
// package vmdisk, read back by vmdisk's readers and by qemu-img. It is a
// separate package so that the restore package's own tests do not depend
// on every format.
package disktest

import (
	"bytes"
	"context"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/repotest"
	"github.com/bunkerbackup/bunker/restore"
	"github.com/bunkerbackup/bunker/vmdisk"
	_ "github.com/bunkerbackup/bunker/vmdisk/all"
)

const size = 16<<20 + 64<<10

// storeDisk stores content as a disk in a fresh repository, in 32 KiB
// chunks with all-zero chunks left as holes.
func storeDisk(t *testing.T) (*repo.Repository, *repo.Disk, []byte) {
	r := repotest.New(t)
	ctx := context.Background()
	rnd := mrand.New(mrand.NewPCG(11, 12))
	content := make([]byte, size)
	for _, reg := range [][2]int{{0, 64 << 10}, {1 << 20, 3 << 20}, {9<<20 + 512, 100000}, {size - 8192, 8192}} {
		for i := reg[0]; i < reg[0]+reg[1]; i++ {
			content[i] = byte(rnd.Uint32() >> 5 & 0x0f)
		}
	}
	var chunks []repo.DiskChunk
	var data int64
	for off := 0; off < size; off += 32 << 10 {
		b := content[off : off+32<<10]
		if bytes.Count(b, []byte{0}) == len(b) {
			continue
		}
		id := r.BlobID(b)
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, b); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, repo.DiskChunk{Offset: uint64(off), Length: uint32(len(b)), ID: id})
		data += int64(len(b))
	}
	lists, err := r.SaveChunkList(ctx, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dg := vmdisk.NewDigest()
	dg.Write(content)
	digest := dg.Sum()
	d := &repo.Disk{Name: "vda", Size: size, SectorSize: 512, Digest: digest,
		ChunkLists: lists, Chunks: uint64(len(chunks)), DataBytes: data}
	return r, d, content
}

func TestRestoreFormats(t *testing.T) {
	r, d, content := storeDisk(t)
	ctx := context.Background()
	dir := t.TempDir()
	rawRef := filepath.Join(dir, "reference.raw")
	if err := os.WriteFile(rawRef, content, 0o600); err != nil {
		t.Fatal(err)
	}
	qemu, qerr := exec.LookPath("qemu-img")
	if qerr != nil && os.Getenv("CI") != "" {
		t.Fatal("qemu-img is needed in CI")
	}
	for _, tc := range []struct{ format, variant, qemuFormat string }{
		{"raw", "", "raw"},
		{"vmdk", "monolithicSparse", "vmdk"},
		{"vmdk", "streamOptimized", "vmdk"},
		{"vhd", "dynamic", "vpc"},
		{"vhd", "fixed", "vpc"},
	} {
		t.Run(tc.format+"-"+tc.variant, func(t *testing.T) {
			path := filepath.Join(dir, tc.format+"-"+tc.variant)
			w, err := vmdisk.Create(path, tc.format, d.Size, tc.variant)
			if err != nil {
				t.Fatal(err)
			}
			st, err := restore.Disk(ctx, r, d, w, restore.DiskOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if st.Digest != d.Digest || st.BytesWritten != d.DataBytes {
				t.Errorf("stats %+v", st)
			}
			img, err := vmdisk.Open(path, tc.format, vmdisk.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if _, err := restore.VerifyDisk(ctx, r, d, img, restore.DiskOptions{BlobID: r.BlobID}); err != nil {
				t.Error(err)
			}
			if qerr != nil {
				return
			}
			if tc.qemuFormat != "raw" {
				if out, err := exec.Command(qemu, "check", "-f", tc.qemuFormat, path).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("does not support checks")) {
					t.Errorf("qemu-img check: %v\n%s", err, out)
				}
			}
			if out, err := exec.Command(qemu, "compare", "-f", tc.qemuFormat, "-F", "raw", path, rawRef).CombinedOutput(); err != nil {
				t.Errorf("qemu-img compare: %v\n%s", err, out)
			}
		})
	}

	// A partition restored into a VMDK of the partition's size.
	start, length := int64(1<<20), int64(4<<20)
	path := filepath.Join(dir, "part.vmdk")
	w, err := vmdisk.Create(path, "vmdk", length, "monolithicSparse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.DiskRange(ctx, r, d, start, length, w, restore.DiskOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := vmdisk.Open(path, "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, err := restore.VerifyDiskRange(ctx, r, d, start, length, img, restore.DiskOptions{BlobID: r.BlobID}); err != nil {
		t.Error(err)
	}
}
