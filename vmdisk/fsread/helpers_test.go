package fsread

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := exec.LookPath("/usr/sbin/" + tool); err == nil {
				continue
			}
			if os.Getenv("CI") == "" {
				t.Skipf("%s not installed", tool)
			}
			t.Fatalf("%s not installed (required in CI)", tool)
		}
	}
}

func sh(t testing.TB, dir, script string) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000", "TZ=UTC", "LC_ALL=C.UTF-8",
		"PATH=/usr/sbin:/sbin:"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// treeOpts says what a source tree holds and what the file system keeps.
type treeOpts struct {
	links  bool          // symbolic links in the tree
	spaces bool          // names with spaces
	perms  bool          // permission bits survive
	mtime  time.Duration // mtime tolerance; 0: not kept
}

const (
	sparseSize = 8<<20 + 77
	randomSize = 2<<20 + 123
)

// writeTree builds the source tree of the file-system tests.
func writeTree(t testing.TB, root string, o treeOpts) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, randomSize)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	files := map[string][]byte{
		"hello.txt":                []byte("hello, world\n"),
		"empty":                    nil,
		"ünïcödé-名前.txt":           []byte("unicode name\n"),
		"Ωmega/inner.txt":          []byte("inner\n"),
		"dir/sub/deep.txt":         []byte("deep file\n"),
		"data/random.bin":          random,
		"data/one-block-exact.bin": bytes.Repeat([]byte{0xab}, 4096),
	}
	if o.spaces {
		files["with space.txt"] = []byte("spaced\n")
	}
	for i := range 300 {
		name := filepath.Join("dir/many", "file-with-a-longish-name-"+string(rune('a'+i%26))+"-"+itoa(i)+".txt")
		files[name] = []byte(strings.Repeat(itoa(i), i%7+1))
	}
	mt := time.Date(2021, 3, 4, 5, 6, 7, 123456700, time.UTC)
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for i, p := range paths {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			t.Fatal(err)
		}
		ts := mt.Add(time.Duration(i) * 7 * time.Second)
		if err := os.Chtimes(full, ts, ts); err != nil {
			t.Fatal(err)
		}
	}
	// A sparse file: data at the start, in the middle and at the end,
	// holes between.
	sp, err := os.Create(filepath.Join(root, "data/sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		off int64
		b   []byte
	}{{0, bytes.Repeat([]byte("S"), 4096)}, {3<<20 + 100, []byte("middle of the sparse file")}, {sparseSize - 10, []byte("0123456789")}} {
		if _, err := sp.WriteAt(c.b, c.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if o.perms {
		if err := os.Chmod(filepath.Join(root, "hello.txt"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.links {
		for link, target := range map[string]string{
			"link-hello":  "hello.txt",
			"dir/sub/up":  "../../hello.txt",
			"abs":         "/dir/sub/deep.txt",
			"lnkdir":      "dir/sub",
			"links/loop1": "loop2",
			"links/loop2": "loop1",
			"links/dangl": "does-not-exist",
			"links/long":  strings.Repeat("long-target/", 10) + "x",
		} {
			full := filepath.Join(root, link)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// checkTree compares every file, directory listing and link of the source
// tree src with fsys.
func checkTree(t *testing.T, fsys *FS, src string, o treeOpts) {
	t.Helper()
	count := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		want, err := os.Lstat(p)
		if err != nil {
			return err
		}
		got, err := fsys.Lstat(rel)
		if err != nil {
			t.Errorf("lstat %s: %v", rel, err)
			return nil
		}
		count++
		if got.Mode().Type() != want.Mode().Type() {
			t.Errorf("%s: type %v, want %v", rel, got.Mode().Type(), want.Mode().Type())
			return nil
		}
		if o.perms && got.Mode().Perm() != want.Mode().Perm() {
			t.Errorf("%s: perm %v, want %v", rel, got.Mode().Perm(), want.Mode().Perm())
		}
		if o.mtime > 0 && want.Mode().IsRegular() {
			if d := got.ModTime().Sub(want.ModTime()).Abs(); d > o.mtime {
				t.Errorf("%s: mtime %v, want %v", rel, got.ModTime().UTC(), want.ModTime().UTC())
			}
		}
		switch {
		case want.Mode().IsRegular():
			if got.Size() != want.Size() {
				t.Errorf("%s: size %d, want %d", rel, got.Size(), want.Size())
			}
			wantData, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			gotData, err := fs.ReadFile(fsys, rel)
			if err != nil {
				t.Errorf("read %s: %v", rel, err)
			} else if !bytes.Equal(gotData, wantData) {
				t.Errorf("%s: content differs (%d bytes, want %d)", rel, len(gotData), len(wantData))
			}
		case want.IsDir():
			wantEntries, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			gotEntries, err := fsys.ReadDir(rel)
			if err != nil {
				t.Errorf("readdir %s: %v", rel, err)
				return nil
			}
			g := names(gotEntries)
			if rel == "." {
				// mkfs makes lost+found; the FAT and NTFS drivers hide
				// nothing else.
				g = slices.DeleteFunc(g, func(s string) bool { return s == "lost+found" })
			}
			if w := names(wantEntries); !slices.Equal(w, g) {
				t.Errorf("readdir %s:\n got %q\nwant %q", rel, g, w)
			}
		case want.Mode()&fs.ModeSymlink != 0:
			wantTarget, _ := os.Readlink(p)
			gotTarget, err := fsys.ReadLink(rel)
			if err != nil || gotTarget != wantTarget {
				t.Errorf("readlink %s = %q, %v; want %q", rel, gotTarget, err, wantTarget)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count < 5 {
		t.Errorf("checked only %d files", count)
	}
}

func names(es []fs.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// checkSparse reads the sparse file with ReadAt at places around its data
// and holes.
func checkSparse(t *testing.T, fsys *FS, src string) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join(src, "data/sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open("data/sparse.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra := f.(io.ReaderAt)
	for _, off := range []int64{0, 4000, 4096, 1 << 20, 3<<20 + 90, 3<<20 + 100, sparseSize - 4097, sparseSize - 10} {
		buf := make([]byte, 5000)
		n, err := ra.ReadAt(buf, off)
		wantN := min(int64(len(buf)), sparseSize-off)
		if int64(n) != wantN || (err != nil && !(errors.Is(err, io.EOF) && wantN < int64(len(buf)))) {
			t.Errorf("ReadAt(%d) = %d, %v; want %d bytes", off, n, err, wantN)
			continue
		}
		if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
			t.Errorf("ReadAt(%d): wrong bytes", off)
		}
	}
	if _, err := f.(io.Seeker).Seek(sparseSize-10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(f)
	if err != nil || string(tail) != "0123456789" {
		t.Errorf("read after seek = %q, %v", tail, err)
	}
}

// walkBounded walks fsys reading every file, within limits, for fuzzing:
// it must neither panic nor run away on a damaged file system.
func walkBounded(fsys *FS) {
	budget := 2000
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		es, err := fsys.ReadDir(dir)
		if err != nil || depth > 8 {
			return
		}
		for _, e := range es {
			if budget--; budget < 0 {
				return
			}
			p := e.Name()
			if dir != "." {
				p = dir + "/" + e.Name()
			}
			if !fs.ValidPath(p) {
				continue
			}
			_, _ = fsys.Stat(p)
			_, _ = fsys.Lstat(p)
			switch {
			case e.IsDir():
				walk(p, depth+1)
			case e.Type()&fs.ModeSymlink != 0:
				_, _ = fsys.ReadLink(p)
			default:
				f, err := fsys.Open(p)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, io.LimitReader(f, 1<<20))
				if ra, ok := f.(io.ReaderAt); ok {
					buf := make([]byte, 4096)
					_, _ = ra.ReadAt(buf, 1<<30)
				}
				f.Close()
			}
		}
	}
	walk(".", 0)
}

// overlay is a file image with its first bytes replaced, for fuzzing large
// images through small inputs.
type overlay struct {
	base io.ReaderAt
	head []byte
}

func (o overlay) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(o.head)) {
		n = copy(p, o.head[off:])
	}
	if n == len(p) {
		return n, nil
	}
	k, err := o.base.ReadAt(p[n:], off+int64(n))
	return n + k, err
}
