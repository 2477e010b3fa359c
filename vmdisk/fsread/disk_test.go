//go:build unix

package fsread

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestOpenPartitionExtract opens partitions by number and extracts
// subtrees to a local directory, comparing them with the source tree.
func TestOpenPartitionExtract(t *testing.T) {
	needTools(t, "sfdisk", "mkfs.ext4")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, extOpts)
	sh(t, dir, `
truncate -s 60M disk.raw
sfdisk -q disk.raw <<'EOF'
label: dos
unit: sectors
start=2048, size=8192, type=82
start=10240, size=102400, type=83
EOF
mkfs.ext4 -q -F -d src ext4.img 50M
dd if=ext4.img of=disk.raw bs=512 seek=10240 conv=notrunc,sparse status=none
`)
	img, err := raw.Open(filepath.Join(dir, "disk.raw"), vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	for _, n := range []int{0, 3} {
		if _, _, err := OpenPartition(img, img.Size(), 0, n); !errors.Is(err, ErrNoPartition) || !strings.Contains(err.Error(), "2 (ext4)") {
			t.Errorf("partition %d: %v", n, err)
		}
	}
	if _, _, err := OpenPartition(img, img.Size(), 0, 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("partition 1 (unformatted): %v", err)
	}
	fsys, p, err := OpenPartition(img, img.Size(), 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p.Start != 10240*512 || p.Filesystem != "ext4" {
		t.Errorf("partition %+v", p)
	}

	out := filepath.Join(dir, "out")
	var progressed int
	st, err := Extract(context.Background(), fsys, ".", out, ExtractOptions{Progress: func(string, int64) { progressed++ }})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(out, "lost+found")); err != nil {
		t.Fatal(err)
	}
	if st.Files < 300 || st.Links != 8 || st.Bytes < sparseSize+randomSize || progressed != st.Files+st.Dirs+st.Links {
		t.Errorf("stats %+v, %d progress calls", st, progressed)
	}
	compareDirs(t, src, out)
	// The sparse file stays sparse.
	var sys syscall.Stat_t
	if err := syscall.Stat(filepath.Join(out, "data/sparse.bin"), &sys); err != nil {
		t.Fatal(err)
	}
	if sys.Blocks*512 > 1<<20 {
		t.Errorf("sparse.bin extracted with %d bytes allocated", sys.Blocks*512)
	}

	// A subtree keeps its path under the target, which is created.
	out2 := filepath.Join(dir, "new/out2")
	if _, err := Extract(context.Background(), fsys, "dir/sub", out2, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out2, "dir/sub/deep.txt")); err != nil || string(b) != "deep file\n" {
		t.Errorf("extracted deep.txt = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(out2, "dir/sub/up")); err != nil || l != "../../hello.txt" {
		t.Errorf("extracted link = %q, %v", l, err)
	}
	out4 := filepath.Join(dir, "out4")
	if err := os.MkdirAll(out4, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out4, "hello.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(context.Background(), fsys, "hello.txt", out4, ExtractOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("extract over an existing file: %v", err)
	}
	if _, err := Extract(context.Background(), fsys, "hello.txt", out4, ExtractOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out4, "hello.txt")); err != nil || string(b) != "hello, world\n" {
		t.Errorf("extracted hello.txt = %q, %v", b, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Extract(ctx, fsys, "dir", filepath.Join(dir, "out3"), ExtractOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled extract: %v", err)
	}
}

// compareDirs checks that the trees a and b hold the same names, types,
// permissions, contents, link targets and file mtimes (to the second).
func compareDirs(t *testing.T, a, b string) {
	t.Helper()
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(filepath.Join(b, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		switch {
		case wi.Mode().IsRegular():
			w, _ := os.ReadFile(p)
			g, _ := os.ReadFile(filepath.Join(b, rel))
			if !bytes.Equal(w, g) {
				t.Errorf("%s: content differs", rel)
			}
			if wi.ModTime().Unix() != gi.ModTime().Unix() {
				t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
			}
		case wi.Mode()&fs.ModeSymlink != 0:
			w, _ := os.Readlink(p)
			g, _ := os.Readlink(filepath.Join(b, rel))
			if w != g {
				t.Errorf("%s: link %q, want %q", rel, g, w)
			}
		case wi.IsDir():
			we, _ := os.ReadDir(p)
			ge, _ := os.ReadDir(filepath.Join(b, rel))
			if len(we) != len(ge) {
				t.Errorf("%s: %d entries, want %d", rel, len(ge), len(we))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
