package fsread

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/part"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

// TestGPTDisk goes the whole way a file restore goes: a raw disk image
// (vmdisk/raw), its GPT (vmdisk/part), the file system of each partition
// (fsread).
func TestGPTDisk(t *testing.T) {
	needTools(t, "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, extOpts)
	fatSrc := filepath.Join(dir, "fatsrc")
	writeTree(t, fatSrc, fatOpts)
	sh(t, dir, `
truncate -s 120M disk.raw
sfdisk -q disk.raw <<'EOF'
label: gpt
unit: sectors
first-lba: 2048
start=2048,   size=69632,  type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
start=71680,  size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
EOF
mkfs.vfat -F 32 -s 1 -C fat32.img $((69632 / 2)) >/dev/null
mcopy -s -m -i fat32.img fatsrc/* ::/
mkfs.ext4 -q -F -d src ext4.img 64M
dd if=fat32.img of=disk.raw bs=512 seek=2048 conv=notrunc,sparse status=none
dd if=ext4.img of=disk.raw bs=512 seek=71680 conv=notrunc,sparse status=none
`)
	img, err := raw.Open(filepath.Join(dir, "disk.raw"), vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	table, err := part.Read(img, img.Size(), img.SectorSize())
	if err != nil {
		t.Fatal(err)
	}
	if table.Type != "gpt" || len(table.Partitions) != 2 {
		t.Fatalf("partition table %+v", table)
	}
	want := map[int]struct {
		fstype string
		src    string
		opts   treeOpts
	}{1: {"fat32", fatSrc, fatOpts}, 2: {"ext4", src, extOpts}}
	for _, p := range table.Partitions {
		w := want[p.Number]
		if p.Filesystem != w.fstype || !Supported(p.Filesystem) {
			t.Fatalf("partition %d: file system %q, want %q", p.Number, p.Filesystem, w.fstype)
		}
		fsys, err := Open(p.Section(img), p.Size, p.Filesystem)
		if err != nil {
			t.Fatalf("partition %d: %v", p.Number, err)
		}
		checkTree(t, fsys, w.src, w.opts)
		checkSparse(t, fsys, w.src)
		if b, err := fs.ReadFile(fsys, "dir/sub/deep.txt"); err != nil || string(b) != "deep file\n" {
			t.Errorf("partition %d: deep.txt = %q, %v", p.Number, b, err)
		}
	}
}
