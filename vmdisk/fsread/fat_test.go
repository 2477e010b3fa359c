package fsread

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// FAT keeps local-time mtimes in 2-second steps; the tests run mtools
// with TZ=UTC.
var fatOpts = treeOpts{spaces: true, mtime: 2 * time.Second}

func TestFAT(t *testing.T) {
	needTools(t, "mkfs.vfat", "mcopy")
	src := t.TempDir()
	writeTree(t, src, fatOpts)
	for _, tc := range []struct{ name, mkfs string }{
		{"fat32", "mkfs.vfat -F 32 -C fs.img 65536"},
		{"fat32-4k-clusters", "mkfs.vfat -F 32 -s 8 -C fs.img 300000"},
		{"fat16", "mkfs.vfat -F 16 -C fs.img 32768"},
		{"fat12", "mkfs.vfat -F 12 -s 8 -C fs.img 16000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sh(t, dir, tc.mkfs+" >/dev/null && mcopy -s -m -i fs.img "+src+"/* ::/")
			fsys := openImage(t, filepath.Join(dir, "fs.img"))
			if want := strings.SplitN(tc.name, "-", 2)[0]; fsys.Type() != want {
				t.Errorf("type %s, want %s", fsys.Type(), want)
			}
			checkTree(t, fsys, src, fatOpts)
			checkSparse(t, fsys, src)
			// Files are read through our own cluster-chain walk.
			_ = fsys.call(func() error {
				n, _, err := fsys.resolve("data/random.bin", false)
				if err != nil {
					return err
				}
				if _, ok := n.id.(uint32); !ok {
					t.Errorf("no first cluster for data/random.bin: %#v", n.id)
				}
				return nil
			})
			// FAT names are case-insensitive.
			if b, err := fs.ReadFile(fsys, "DIR/Sub/DEEP.TXT"); err != nil || string(b) != "deep file\n" {
				t.Errorf("case-insensitive read = %q, %v", b, err)
			}
			if _, err := fsys.Open("dir/nope"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("open missing file: %v", err)
			}
		})
	}
}

func TestFATFSTest(t *testing.T) {
	needTools(t, "mkfs.vfat", "mcopy")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for name, data := range map[string]string{
		"hello.txt": "hello\n", "Long File Name.txt": "long", "dir/sub/deep.txt": "deep\n",
		"dir/big.bin": strings.Repeat("0123456789abcdef", 3000), "empty": "",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, dir, "mkfs.vfat -F 12 -C fs.img 2048 >/dev/null && mcopy -s -m -i fs.img src/* ::/")
	fsys := openImage(t, filepath.Join(dir, "fs.img"))
	if err := fstest.TestFS(fsys, "hello.txt", "Long File Name.txt", "dir/sub/deep.txt", "empty"); err != nil {
		t.Fatal(err)
	}
}

// TestFATLoop: a FAT whose cluster chain loops is refused when opened
// (the FAT library would follow it forever).
func TestFATLoop(t *testing.T) {
	needTools(t, "mkfs.vfat", "mcopy")
	dir := t.TempDir()
	sh(t, dir, `mkfs.vfat -F 16 -s 1 -C fs.img 8192 >/dev/null
head -c 20000 /dev/zero > big; mcopy -i fs.img big ::/`)
	img, err := os.ReadFile(filepath.Join(dir, "fs.img"))
	if err != nil {
		t.Fatal(err)
	}
	// The file's chain is clusters 2, 3, 4, ...: link 4 back to 3 in both
	// FATs (reserved sectors at byte 14, sectors per FAT at byte 22).
	fat := int(binary.LittleEndian.Uint16(img[14:])) * 512
	for _, fatOff := range []int{fat, fat + int(binary.LittleEndian.Uint16(img[22:]))*512} {
		img[fatOff+2*4] = 3 // cluster 4 -> 3
		img[fatOff+2*4+1] = 0
	}
	_, err = Open(bytesReaderAt(img), int64(len(img)), "fat16")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "loops") {
		t.Fatalf("open FAT with a loop: %v", err)
	}
}
