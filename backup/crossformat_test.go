package backup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	_ "github.com/bunkerbackup/bunker/vmdisk/all"
)

// TestDiskCrossFormat converts one disk to every container format with
// qemu-img and checks that each backs up to the same chunk list, adding no
// data after the first.
func TestDiskCrossFormat(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-img is missing")
		}
		t.Skip("qemu-img is missing")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	data := diskContent(24 << 20)
	// A sparse raw file: write only the non-zero 64 KiB blocks.
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 64 << 10 {
		blk := data[off : off+64<<10]
		for _, c := range blk {
			if c != 0 {
				if _, err := f.WriteAt(blk, int64(off)); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
	}
	f.Truncate(int64(len(data)))
	f.Close()

	images := []struct{ name, format, opts string }{
		{"disk.raw", "", ""},
		{"sparse.vmdk", "vmdk", "subformat=monolithicSparse"},
		{"stream.vmdk", "vmdk", "subformat=streamOptimized"},
		{"dynamic.vhd", "vpc", "subformat=dynamic,force_size=on"},
		{"fixed.vhd", "vpc", "subformat=fixed,force_size=on"},
		{"disk.vhdx", "vhdx", ""},
		{"disk.qcow2", "qcow2", ""},
		{"compressed.qcow2", "qcow2", "-c"},
	}
	for _, im := range images[1:] {
		args := []string{"convert", "-q", "-f", "raw", "-O", im.format}
		if im.opts == "-c" {
			args = append(args, "-c")
		} else if im.opts != "" {
			args = append(args, "-o", im.opts)
		}
		args = append(args, raw, filepath.Join(dir, im.name))
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}

	r, _ := newRepo(t)
	ctx := context.Background()
	sum := diskDigest(data)
	var first []repo.DiskChunk
	for i, im := range images {
		sn, err := Disks(ctx, r, []DiskSource{{Path: filepath.Join(dir, im.name), Name: "vm"}}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", im.name, err)
		}
		d := sn.Disks[0]
		if d.Digest != sum || d.Size != int64(len(data)) {
			t.Errorf("%s: digest %s size %d", im.name, d.Digest, d.Size)
		}
		list := chunkList(t, r, d)
		if i == 0 {
			first = list
			continue
		}
		if len(list) != len(first) {
			t.Errorf("%s (%s): %d chunks, raw has %d", im.name, d.Format, len(list), len(first))
			continue
		}
		for k := range list {
			if list[k] != first[k] {
				t.Errorf("%s: chunk %d differs", im.name, k)
				break
			}
		}
		if sn.Summary.DataAdded != 0 {
			t.Errorf("%s: added %d bytes", im.name, sn.Summary.DataAdded)
		}
	}
}

// TestDiskSplitExtentChange changes a split VMDK through its extent file
// only: the descriptor is untouched, yet the next backup must read the
// disk again instead of reusing the parent's record.
func TestDiskSplitExtentChange(t *testing.T) {
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "split.vmdk")
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", img, "16M")
	run("qemu-io", "-f", "vmdk", "-c", "write -P 0x11 1M 256k", img)
	descInfo, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newRepo(t)
	ctx := context.Background()
	first, err := Disks(ctx, r, []DiskSource{{Path: img}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run("qemu-io", "-f", "vmdk", "-c", "write -P 0x22 5M 64k", img)
	// qemu-io rewrites the descriptor (a new CID of the same length): give
	// it back its old mtime, so only the extent file looks changed.
	if err := os.Chtimes(img, descInfo.ModTime(), descInfo.ModTime()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(img); fi.Size() != descInfo.Size() {
		t.Fatalf("descriptor size changed from %d to %d", descInfo.Size(), fi.Size())
	}
	second, err := Disks(ctx, r, []DiskSource{{Path: img}}, Options{Parent: first})
	if err != nil {
		t.Fatal(err)
	}
	if second.Disks[0].Digest == first.Disks[0].Digest || second.Disks[0].DataBytes <= first.Disks[0].DataBytes {
		t.Errorf("changed extent not noticed: %+v", second.Disks[0])
	}
}
