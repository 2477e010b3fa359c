package fsread

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bunkerbackup/bunker/vmdisk/part"
)

// openImage opens the file-system image at path with the type
// vmdisk/part detects.
func openImage(t testing.TB, path string) *FS {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	typ, _, _ := part.DetectFilesystem(f, st.Size())
	fsys, err := Open(f, st.Size(), typ)
	if err != nil {
		t.Fatalf("open %s (%s): %v", path, typ, err)
	}
	return fsys
}

// mkfs.ext4 -d keeps whole seconds of mtimes only; nanoseconds are
// checked through debugfs below.
var extOpts = treeOpts{links: true, spaces: true, perms: true, mtime: time.Second}

func TestExt(t *testing.T) {
	needTools(t, "mkfs.ext4")
	src := t.TempDir()
	writeTree(t, src, extOpts)
	// 70 MiB, sparse: with 1 KiB blocks its end needs the triple indirect
	// block of ext2/3.
	sh(t, src, "truncate -s 70M data/huge-sparse.bin && echo start | dd of=data/huge-sparse.bin conv=notrunc status=none && echo end | dd of=data/huge-sparse.bin bs=1M seek=69 conv=notrunc status=none")
	for _, tc := range []struct {
		name, mkfs, want string
		opts             treeOpts
	}{
		{"ext4", "mkfs.ext4 -b 4096", "ext4", extOpts},
		{"ext4-1k", "mkfs.ext4 -b 1024 -O ^metadata_csum", "ext4", extOpts},
		{"ext4-64bit-metabg", "mkfs.ext4 -b 1024 -O 64bit,meta_bg,^resize_inode", "ext4", extOpts},
		// ext2/3: block maps with indirect blocks, 128-byte inodes
		// (whole-second mtimes).
		{"ext3", "mkfs.ext3 -b 2048", "ext3", extOpts},
		{"ext2-128", "mkfs.ext2 -b 1024 -I 128", "ext2", extOpts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "fs.img")
			sh(t, dir, tc.mkfs+" -q -F -d "+src+" "+img+" 40M")
			fsys := openImage(t, img)
			if fsys.Type() != tc.want {
				t.Errorf("type %s, want %s", fsys.Type(), tc.want)
			}
			if w := fsys.Warnings(); len(w) != 0 {
				t.Errorf("warnings %q", w)
			}
			checkTree(t, fsys, src, tc.opts)
			checkSparse(t, fsys, src)
			checkLinks(t, fsys)
		})
		if tc.name == "ext4" {
			t.Run("mtime-ns", func(t *testing.T) { checkExtNanoseconds(t, src) })
		}
	}
}

// checkExtNanoseconds sets a nanosecond mtime and a post-2038 one with
// debugfs and reads them back.
func checkExtNanoseconds(t *testing.T, src string) {
	needTools(t, "debugfs")
	dir := t.TempDir()
	sh(t, dir, "mkfs.ext4 -q -F -d "+src+` fs.img 40M
debugfs -w -R "sif /hello.txt mtime 20210304050607" fs.img
debugfs -w -R "sif /hello.txt mtime_extra $(( (123456789 << 2) ))" fs.img
debugfs -w -R "sif /dir/sub/deep.txt mtime 20210304050607" fs.img
debugfs -w -R "sif /dir/sub/deep.txt mtime_extra 1" fs.img
debugfs -w -R "sif /hello.txt uid 70000" fs.img
debugfs -w -R "sif /hello.txt gid 99" fs.img
debugfs -w -R "feature needs_recovery" fs.img`)
	fsys := openImage(t, filepath.Join(dir, "fs.img"))
	for name, want := range map[string]time.Time{
		"hello.txt":        time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC),
		"dir/sub/deep.txt": time.Date(2157, 4, 10, 11, 34, 23, 0, time.UTC),
	} {
		st, err := fsys.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(want) {
			t.Errorf("%s: mtime %v, want %v", name, st.ModTime().UTC(), want)
		}
	}
	if w := fsys.Warnings(); len(w) != 1 || !strings.Contains(w[0], "journal") {
		t.Errorf("warnings %q", w)
	}
	st, err := fsys.Stat("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := st.Sys().(*Owner); !ok || *o != (Owner{UID: 70000, GID: 99}) {
		t.Errorf("owner %#v", st.Sys())
	}
}

// checkLinks checks how symbolic links are followed.
func checkLinks(t *testing.T, fsys *FS) {
	t.Helper()
	for name, want := range map[string]string{
		"link-hello":          "hello, world\n",
		"dir/sub/up":          "hello, world\n",
		"abs":                 "deep file\n",
		"lnkdir/deep.txt":     "deep file\n",
		"lnkdir/up":           "hello, world\n",
		"lnkdir/../hello.txt": "", // ".." is not a valid fs path
	} {
		b, err := fs.ReadFile(fsys, name)
		if want == "" {
			if !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("read %s: %v, want ErrInvalid", name, err)
			}
			continue
		}
		if err != nil || string(b) != want {
			t.Errorf("read %s = %q, %v; want %q", name, b, err, want)
		}
	}
	if st, err := fsys.Stat("lnkdir"); err != nil || !st.IsDir() {
		t.Errorf("stat lnkdir = %v, %v; want a directory", st, err)
	}
	if st, err := fsys.Lstat("lnkdir"); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("lstat lnkdir = %v, %v; want a symlink", st, err)
	}
	if es, err := fsys.ReadDir("lnkdir"); err != nil || len(es) != 2 {
		t.Errorf("readdir lnkdir = %v, %v", es, err)
	}
	_, err := fsys.Open("links/loop1")
	if err == nil || !strings.Contains(err.Error(), "too many levels") || !strings.Contains(err.Error(), "links/loop1") {
		t.Errorf("open loop: %v", err)
	}
	if _, err := fsys.Open("links/dangl"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open dangling link: %v", err)
	}
	if _, err := fsys.Stat("hello.txt/x"); !errors.Is(err, ErrNotDir) {
		t.Errorf("stat through a file: %v", err)
	}
	var pe *fs.PathError
	if _, err := fsys.Open("dir/nope.txt"); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != "dir/nope.txt" {
		t.Errorf("open missing file: %v", err)
	}
	if _, err := fsys.ReadLink("hello.txt"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("readlink of a file: %v", err)
	}
}

// TestExtFSTest runs the io/fs conformance tests on a small ext4 image
// (they read every file many times over).
func TestExtFSTest(t *testing.T) {
	needTools(t, "mkfs.ext4")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for name, data := range map[string]string{
		"hello.txt": "hello, world\n", "dir/sub/deep.txt": "deep\n", "ünïcödé-名前.txt": "x",
		"dir/big.bin": strings.Repeat("0123456789abcdef", 5000), "empty": "",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("dir/sub", filepath.Join(src, "lnkdir")); err != nil {
		t.Fatal(err)
	}
	sh(t, dir, "truncate -s 300K src/dir/sparse.bin; echo tail >> src/dir/sparse.bin; mkfs.ext4 -q -F -d src fs.img 8M")
	fsys := openImage(t, filepath.Join(dir, "fs.img"))
	if err := fstest.TestFS(fsys, "hello.txt", "dir/sub/deep.txt", "dir/sparse.bin", "lnkdir", "ünïcödé-名前.txt"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(strings.NewReader(""), 0, "btrfs"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("btrfs: %v", err)
	}
	zeros := make([]byte, 1<<20)
	for _, typ := range Types() {
		_, err := Open(bytesReaderAt(zeros), int64(len(zeros)), typ)
		if err == nil {
			t.Errorf("%s on zeros: no error", typ)
		} else if !strings.Contains(err.Error(), typ) {
			t.Errorf("%s on zeros: %v does not name the type", typ, err)
		}
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, errors.New("EOF")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, errors.New("EOF")
	}
	return n, nil
}

// panicky is a driver whose every method panics.
type panicky struct{}

func (panicky) root() (*node, error)                       { return &node{mode: fs.ModeDir}, nil }
func (panicky) list(*node, string) ([]*node, error)        { var a []*node; return a[:1], nil }
func (panicky) content(*node, string) (io.ReaderAt, error) { panic("content") }
func (panicky) readlink(*node, string) (string, error)     { panic("readlink") }
func (panicky) foldCase() bool                             { return false }

func TestPanicBecomesError(t *testing.T) {
	fsys := &FS{typ: "test", drv: panicky{}, rt: &node{name: ".", mode: fs.ModeDir}, cache: dirCache{m: map[string][]*node{}}}
	_, err := fsys.ReadDir(".")
	var pe *fs.PathError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &pe) || pe.Path != "." || !strings.Contains(err.Error(), "panicky.list") {
		t.Fatalf("readdir: %v", err)
	}
	t.Log(err)
}

// TestConcurrentReads reads files from several goroutines at once.
func TestConcurrentReads(t *testing.T) {
	needTools(t, "mkfs.ext4")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src, treeOpts{})
	sh(t, dir, "mkfs.ext4 -q -F -d src fs.img 40M")
	fsys := openImage(t, filepath.Join(dir, "fs.img"))
	want, err := os.ReadFile(filepath.Join(src, "data/random.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open("data/random.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			buf := make([]byte, 10000)
			for off := int64(g * 1000); off+int64(len(buf)) <= int64(len(want)); off += 200000 {
				if _, err := f.(io.ReaderAt).ReadAt(buf, off); err != nil || !bytes.Equal(buf, want[off:off+int64(len(buf))]) {
					t.Errorf("ReadAt(%d): %v", off, err)
					return
				}
				if _, err := fsys.ReadDir("dir/many"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
