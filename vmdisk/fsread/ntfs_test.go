package fsread

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNTFS builds an NTFS volume with mkntfs and ntfscp (which cannot make
// directories without mounting): files in the root, one with an alternate
// data stream, and a sparse file made by extending a file with
// ntfstruncate.
func TestNTFS(t *testing.T) {
	needTools(t, "mkntfs", "ntfscp", "ntfstruncate", "ntfsls")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	random := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 70000)
	for name, data := range map[string]string{
		"hello.txt": "hello, world\n", "random.bin": random, "ünïcödé-名前.txt": "unicode name\n",
		"sparse.bin": "head\n", "Mixed Case.TXT": "mixed\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		ts := time.Date(2022, 5, 6, 7, 8, 9, 123456700, time.UTC)
		if err := os.Chtimes(filepath.Join(src, name), ts, ts); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, dir, `
truncate -s 24M ntfs.img
mkntfs -q -F -f -s 512 -L fsread ntfs.img >/dev/null 2>&1
for f in src/*; do ntfscp -q -t ntfs.img "$f" "/$(basename "$f")"; done
ntfscp -q -N secret ntfs.img src/random.bin /hello.txt
ino=$(ntfsls -i ntfs.img | awk '$2 == "sparse.bin" {print $1}')
ntfstruncate ntfs.img "$ino" 8388608 >/dev/null 2>&1
truncate -s 8388608 src/sparse.bin
touch -d '2022-05-06 07:08:09.1234567 UTC' src/sparse.bin`)
	fsys := openImage(t, filepath.Join(dir, "ntfs.img"))
	if fsys.Type() != "ntfs" {
		t.Fatalf("type %s", fsys.Type())
	}
	// ntfstruncate updates the mtime: leave it out of the time check.
	checkTree(t, fsys, src, treeOpts{mtime: 0})
	for _, name := range []string{"hello.txt", "random.bin"} {
		st, err := fsys.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		// ntfscp -t keeps whole seconds.
		if want := time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC); !st.ModTime().Equal(want) {
			t.Errorf("%s: mtime %v, want %v", name, st.ModTime().UTC(), want)
		}
	}
	if b, err := fs.ReadFile(fsys, "HELLO.TXT"); err != nil || string(b) != "hello, world\n" {
		t.Errorf("case-insensitive read = %q, %v", b, err)
	}
	if _, err := fsys.Stat("$MFT"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat $MFT: %v, want hidden", err)
	}
}

// TestNTFSTree copies the full test tree (directories, a directory large
// enough for an index B-tree, a sparse file) into NTFS through an ntfs-3g
// FUSE mount. Outside CI it is skipped where FUSE mounts are not allowed.
func TestNTFSTree(t *testing.T) {
	needTools(t, "mkntfs", "ntfs-3g", "fusermount")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	o := treeOpts{spaces: true, mtime: time.Microsecond}
	writeTree(t, src, o)
	sh(t, dir, `truncate -s 64M ntfs.img; mkntfs -q -F -f -s 512 ntfs.img >/dev/null 2>&1; mkdir mnt`)
	mnt := filepath.Join(dir, "mnt")
	if out, err := exec.Command("ntfs-3g", filepath.Join(dir, "ntfs.img"), mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("ntfs-3g mount: %v: %s", err, out)
		}
		t.Fatalf("ntfs-3g mount (required in CI): %v: %s", err, out)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if out, err := exec.Command("fusermount", "-u", mnt).CombinedOutput(); err != nil {
				t.Errorf("unmount: %v: %s", err, out)
			}
		}
	}
	t.Cleanup(unmount)
	sh(t, dir, `cp -a --sparse=always src/. mnt/`)
	unmount()
	fsys := openImage(t, filepath.Join(dir, "ntfs.img"))
	checkTree(t, fsys, src, o)
	checkSparse(t, fsys, src)
}
