//go:build linux

package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/xattr"

	"github.com/bunkerbackup/bunker/repo"
)

// buildTree creates a tree with every kind of object and returns its root.
func buildTree(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(dir, "small.txt"), []byte("hello, world\n"))
	writeFile(t, filepath.Join(dir, "empty"), nil)
	writeFile(t, filepath.Join(dir, "sub", "big.bin"), randomBytes(5<<20+123, 1))
	writeFile(t, filepath.Join(dir, "sub", "text.txt"), textBytes(3<<20, 2))
	writeFile(t, filepath.Join(dir, "sub", "deeper", "x"), []byte("x"))
	writeFile(t, filepath.Join(dir, "bad\xff\xfename"), []byte("not utf-8"))
	writeFile(t, filepath.Join(dir, "new\nline"), []byte("newline"))
	if err := os.Symlink("sub/big.bin", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "small.txt"), filepath.Join(dir, "hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "small.txt"), 0o640|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	// A sparse file: 1 MiB data, 10 MiB hole, 100 KiB data, 3 MiB hole at
	// the end.
	sp, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	sp.WriteAt(randomBytes(1<<20, 3), 0)
	sp.WriteAt(randomBytes(100<<10, 4), 11<<20)
	sp.Truncate(11<<20 + 100<<10 + 3<<20)
	sp.Close()
	// An ordinary file with a zero run inside.
	zr := append(append(randomBytes(700<<10, 5), make([]byte, 2<<20)...), randomBytes(10, 6)...)
	writeFile(t, filepath.Join(dir, "zerorun"), zr)
	return dir
}

func TestFilesRoundTrip(t *testing.T) {
	dir := buildTree(t)
	xattrOK := xattr.Set(filepath.Join(dir, "small.txt"), "user.bunker", []byte("value\x00bin")) == nil
	if !xattrOK && os.Getenv("CI") != "" {
		t.Fatal("the file system of the test directory has no user xattrs")
	}
	r, be := newRepo(t)
	ctx := context.Background()
	var warned []string
	opened := filesOpened.Load()
	sn, err := Files(ctx, r, []string{dir}, Options{
		Hostname: "testhost",
		Tags:     []string{"b", "a"},
		Time:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Warn:     func(p string, err error) { warned = append(warned, p+": "+err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warned) > 0 || sn.Incomplete {
		t.Fatalf("warnings: %v", warned)
	}
	// The empty file is not opened, the second hard link not read again.
	if n := filesOpened.Load() - opened; n != 8 {
		t.Errorf("%d files opened, want 8", n)
	}
	if sn.Hostname != "testhost" || !slices.Equal(sn.Tags, []string{"a", "b"}) || !sn.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("snapshot fields: %+v", sn)
	}
	if sn.ID.IsNull() || !slices.Equal(sn.Paths, []string{dir}) {
		t.Errorf("snapshot id %v paths %v", sn.ID, sn.Paths)
	}

	// Everything is found after reopening: packs, index and snapshot were
	// written.
	r = reopen(t, be)
	sn2, err := r.LoadSnapshot(ctx, sn.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sn2.Summary
	if sum == nil || sum.FilesNew != 10 || sum.TotalFilesProcessed != 10 || sum.DataBlobs == 0 || sum.DataAdded == 0 {
		t.Errorf("summary %+v", sum)
	}

	// The root tree mirrors the absolute path.
	root := lookup(t, r, sn2, filepath.Dir(dir))
	if root == nil || root.Type != repo.NodeDir || !slices.Equal(children(t, r, root), []string{"src"}) {
		t.Fatalf("intermediate directory: %+v", root)
	}
	srcNode := lookup(t, r, sn2, dir)
	want := []string{"bad\xff\xfename", "empty", "emptydir", "fifo", "hardlink", "link", "new\nline", "small.txt", "sparse", "sub", "zerorun"}
	if got := children(t, r, srcNode); !slices.Equal(got, want) {
		t.Errorf("children %q, want %q", got, want)
	}

	for _, name := range []string{"small.txt", "sub/big.bin", "sub/text.txt", "sub/deeper/x", "bad\xff\xfename", "new\nline", "sparse", "zerorun", "empty", "hardlink"} {
		p := filepath.Join(dir, name)
		n := lookup(t, r, sn2, p)
		if n == nil || n.Type != repo.NodeFile {
			t.Fatalf("%q: node %+v", name, n)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := content(t, r, n); !bytes.Equal(got, data) {
			t.Errorf("%q: content differs (%d bytes, want %d)", name, len(got), len(data))
		}
		if n.Size != uint64(len(data)) {
			t.Errorf("%q: size %d, want %d", name, n.Size, len(data))
		}
		fi, _ := os.Lstat(p)
		st := fi.Sys().(*syscall.Stat_t)
		if !n.ModTime.Equal(fi.ModTime()) || n.Inode != st.Ino || n.DeviceID != st.Dev || n.UID != st.Uid || n.ChangeTime.IsZero() {
			t.Errorf("%q: metadata %+v", name, n)
		}
	}

	// Holes: the sparse file's holes and the zero run are not stored.
	holes := func(name string) (n int, bytes uint64) {
		for _, c := range lookup(t, r, sn2, filepath.Join(dir, name)).Content {
			if c.ID == nil {
				n++
				bytes += c.Len
			}
		}
		return
	}
	if n, b := holes("sparse"); n != 2 || b != 13<<20 {
		t.Errorf("sparse: %d holes of %d bytes, want 2 of %d", n, b, 13<<20)
	}
	if n, b := holes("zerorun"); n != 1 || b != 2<<20 {
		t.Errorf("zerorun: %d holes of %d bytes, want 1 of %d", n, b, 2<<20)
	}
	if n := lookup(t, r, sn2, filepath.Join(dir, "empty")); len(n.Content) != 0 {
		t.Errorf("empty file has content %v", n.Content)
	}

	small := lookup(t, r, sn2, filepath.Join(dir, "small.txt"))
	hard := lookup(t, r, sn2, filepath.Join(dir, "hardlink"))
	if small.Links != 2 || hard.Links != 2 || small.Inode != hard.Inode || small.DeviceID != hard.DeviceID {
		t.Errorf("hard links: %+v / %+v", small, hard)
	}
	if small.Mode != 0o640|os.ModeSetgid {
		t.Errorf("mode %v", small.Mode)
	}
	if small.User == "" && small.UID == 0 {
		t.Errorf("user name of uid 0 not looked up")
	}
	if xattrOK {
		if len(small.Xattrs) != 1 || small.Xattrs[0].Name != "user.bunker" || string(small.Xattrs[0].Value) != "value\x00bin" {
			t.Errorf("xattrs %+v", small.Xattrs)
		}
	}
	if n := lookup(t, r, sn2, filepath.Join(dir, "link")); n.Type != repo.NodeSymlink || n.LinkTarget != "sub/big.bin" {
		t.Errorf("symlink %+v", n)
	}
	if n := lookup(t, r, sn2, filepath.Join(dir, "fifo")); n.Type != repo.NodeFIFO || n.Mode != 0o600 {
		t.Errorf("fifo %+v", n)
	}
	if n := lookup(t, r, sn2, filepath.Join(dir, "emptydir")); n.Type != repo.NodeDir || n.Mode != 0o750 || len(children(t, r, n)) != 0 {
		t.Errorf("empty dir %+v", n)
	}
}

func TestDeviceNodes(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("creating device nodes needs root, and CI is set")
		}
		t.Skip("creating device nodes needs root")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "null")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int((1<<8)|3)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mknod: %v", err)
		}
		t.Skipf("mknod: %v", err)
	}
	r, _ := newRepo(t)
	sn, err := Files(context.Background(), r, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := lookup(t, r, sn, p)
	if n.Type != repo.NodeCharDev || n.Rdev != (1<<8)|3 || len(n.Content) != 0 {
		t.Errorf("device node %+v", n)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*.tmp", "/a/b/c.tmp", true},
		{"*.tmp", "/a/b/c.tmpx", false},
		{"b", "/a/b", true},
		{"b", "/a/bb", false},
		{"/a/b", "/a/b", true},
		{"/b", "/a/b", false},
		{"a/b", "/x/a/b", true},
		{"/x/**/c", "/x/c", true},
		{"/x/**/c", "/x/1/2/3/c", true},
		{"/x/**/c", "/y/1/c", false},
		{"cache/**/*.bin", "/home/u/cache/a/b/z.bin", true},
		{"cache/**/*.bin", "/home/u/cache/z.bin", true},
		{"cache/**/*.bin", "/home/u/cache/z.txt", false},
		{"**", "/anything", true},
		{"dir/", "/a/dir", true},
		{"[ab]?", "/x/az", true},
		{"\\*", "/x/*", true},
		{"\\*", "/x/a", false},
	}
	for _, tt := range tests {
		got, err := Match(tt.pattern, tt.path)
		if err != nil || got != tt.want {
			t.Errorf("Match(%q, %q) = %v, %v; want %v", tt.pattern, tt.path, got, err, tt.want)
		}
	}
	if _, err := Match("[", "/x"); err == nil {
		t.Error("bad pattern accepted")
	}
	got := ParseExcludeFile([]byte("# comment\n\n  *.tmp  \n/var/cache\n#x\n"))
	if !slices.Equal(got, []string{"*.tmp", "/var/cache"}) {
		t.Errorf("ParseExcludeFile = %q", got)
	}
}

func TestExcludes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "keep.txt"), []byte("k"))
	writeFile(t, filepath.Join(dir, "drop.tmp"), []byte("d"))
	writeFile(t, filepath.Join(dir, "cache", "big"), randomBytes(1<<20, 1))
	writeFile(t, filepath.Join(dir, "a", "b", "c", "deep.o"), []byte("o"))
	writeFile(t, filepath.Join(dir, "a", "b", "c", "keep.c"), []byte("c"))
	r, _ := newRepo(t)
	before := filesOpened.Load()
	sn, err := Files(context.Background(), r, []string{dir}, Options{Excludes: []string{"*.tmp", filepath.Join(dir, "cache"), "a/**/*.o"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := children(t, r, lookup(t, r, sn, dir)); !slices.Equal(got, []string{"a", "keep.txt"}) {
		t.Errorf("children %q", got)
	}
	if got := children(t, r, lookup(t, r, sn, filepath.Join(dir, "a/b/c"))); !slices.Equal(got, []string{"keep.c"}) {
		t.Errorf("a/b/c children %q", got)
	}
	if n := filesOpened.Load() - before; n != 2 {
		t.Errorf("%d files opened, want 2", n)
	}
	if !slices.Equal(sn.Excludes, []string{"*.tmp", filepath.Join(dir, "cache"), "a/**/*.o"}) {
		t.Errorf("snapshot excludes %q", sn.Excludes)
	}
	if _, err := Files(context.Background(), r, []string{dir}, Options{Excludes: []string{"[x"}}); err == nil {
		t.Error("bad pattern accepted")
	}
}

func TestSeveralPaths(t *testing.T) {
	base := t.TempDir()
	writeFile(t, filepath.Join(base, "x", "1", "f"), []byte("1"))
	writeFile(t, filepath.Join(base, "x", "2", "g"), []byte("2"))
	writeFile(t, filepath.Join(base, "x", "3", "h"), []byte("3"))
	writeFile(t, filepath.Join(base, "single"), []byte("single file"))
	r, _ := newRepo(t)
	var warned []string
	sn, err := Files(context.Background(), r, []string{
		filepath.Join(base, "x", "2"),
		filepath.Join(base, "x", "1"),
		filepath.Join(base, "x", "1", "f"), // inside another path
		filepath.Join(base, "single"),
		filepath.Join(base, "missing"),
	}, Options{Warn: func(p string, err error) { warned = append(warned, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if !sn.Incomplete || len(sn.Warnings) != 1 || !slices.Equal(warned, []string{filepath.Join(base, "missing")}) {
		t.Errorf("incomplete %v warnings %q warned %q", sn.Incomplete, sn.Warnings, warned)
	}
	if got := children(t, r, lookup(t, r, sn, filepath.Join(base, "x"))); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("x children %q", got)
	}
	if got := content(t, r, lookup(t, r, sn, filepath.Join(base, "single"))); string(got) != "single file" {
		t.Errorf("single: %q", got)
	}
	if _, err := Files(context.Background(), r, []string{filepath.Join(base, "missing")}, Options{}); err == nil {
		t.Error("backup of only missing paths succeeded")
	}
}

func TestIncremental(t *testing.T) {
	dir := buildTree(t)
	r, be := newRepo(t)
	ctx := context.Background()
	first, err := Files(ctx, r, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r = reopen(t, be)
	parent, err := r.LoadSnapshot(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	opened, read := filesOpened.Load(), bytesRead.Load()
	second, err := Files(ctx, r, []string{dir}, Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if n, b := filesOpened.Load()-opened, bytesRead.Load()-read; n != 0 || b != 0 {
		t.Errorf("no-change backup opened %d files and read %d bytes", n, b)
	}
	// (The root tree may differ: it holds /tmp, which others change.)
	if *lookup(t, r, second, dir).Subtree != *lookup(t, r, first, dir).Subtree {
		t.Errorf("no-change backup has a different tree")
	}
	if second.Parent == nil || *second.Parent != first.ID {
		t.Errorf("parent %v", second.Parent)
	}
	s := second.Summary
	if s.FilesUnmodified != 10 || s.FilesNew != 0 || s.FilesChanged != 0 || s.DataBlobs != 0 || s.DirsUnmodified < 4 || s.DirsNew != 0 {
		t.Errorf("summary %+v", s)
	}

	// Change one file: only it is read.
	writeFile(t, filepath.Join(dir, "sub", "text.txt"), textBytes(3<<20, 99))
	opened = filesOpened.Load()
	third, err := Files(ctx, r, []string{dir}, Options{Parent: second})
	if err != nil {
		t.Fatal(err)
	}
	if n := filesOpened.Load() - opened; n != 1 {
		t.Errorf("opened %d files, want 1", n)
	}
	s = third.Summary
	if s.FilesChanged != 1 || s.FilesUnmodified != 9 || s.DirsChanged < 2 || s.DirsUnmodified != 2 || s.DataBlobs == 0 || s.DataAdded != 3<<20 {
		t.Errorf("summary %+v", s)
	}
	got := content(t, r, lookup(t, r, third, filepath.Join(dir, "sub", "text.txt")))
	if !bytes.Equal(got, textBytes(3<<20, 99)) {
		t.Error("changed file content differs")
	}
}

func TestUnreadableAndVanishingFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok"), []byte("ok"))
	writeFile(t, filepath.Join(dir, "vanishes"), []byte("gone"))
	writeFile(t, filepath.Join(dir, "unreadable"), randomBytes(3<<20, 1))
	orig := openForRead
	defer func() { openForRead = orig }()
	openForRead = func(p string) (*os.File, error) {
		switch filepath.Base(p) {
		case "vanishes":
			os.Remove(p)
		case "unreadable":
			return nil, &os.PathError{Op: "open", Path: p, Err: syscall.EACCES}
		}
		return orig(p)
	}
	r, be := newRepo(t)
	var mu sync.Mutex
	var warned []string
	sn, err := Files(context.Background(), r, []string{dir}, Options{Warn: func(p string, err error) {
		mu.Lock()
		warned = append(warned, filepath.Base(p))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(warned)
	if !sn.Incomplete || !slices.Equal(warned, []string{"unreadable", "vanishes"}) || len(sn.Warnings) != 2 {
		t.Fatalf("incomplete %v, warned %q, warnings %q", sn.Incomplete, warned, sn.Warnings)
	}
	for _, w := range sn.Warnings {
		if !strings.Contains(w, dir) {
			t.Errorf("warning %q does not name the file", w)
		}
	}
	r = reopen(t, be)
	sn2, err := r.LoadSnapshot(context.Background(), sn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sn2.Incomplete || len(sn2.Warnings) != 2 {
		t.Errorf("stored snapshot: incomplete %v warnings %q", sn2.Incomplete, sn2.Warnings)
	}
	if got := children(t, r, lookup(t, r, sn2, dir)); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("children %q", got)
	}
}

// failingRepo makes SaveBlob fail after n blobs.
type failingRepo struct {
	*repo.Repository
	mu sync.Mutex
	n  int
}

var errInjected = errors.New("injected save failure")

func (f *failingRepo) SaveBlob(ctx context.Context, t repo.BlobType, id repo.ID, data []byte) (bool, int, error) {
	f.mu.Lock()
	f.n--
	fail := f.n < 0
	f.mu.Unlock()
	if fail {
		return false, 0, errInjected
	}
	return f.Repository.SaveBlob(ctx, t, id, data)
}

func (f *failingRepo) SaveTree(ctx context.Context, t *repo.Tree) (repo.ID, error) {
	f.mu.Lock()
	f.n--
	fail := f.n < 0
	f.mu.Unlock()
	if fail {
		return repo.ID{}, errInjected
	}
	return f.Repository.SaveTree(ctx, t)
}

func TestRepositoryErrorAborts(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		writeFile(t, filepath.Join(dir, fmt.Sprint(i/5), fmt.Sprint(i)), randomBytes(600<<10, uint64(i)))
	}
	for _, n := range []int{0, 3, 10, 25} {
		r, be := newRepo(t)
		_, err := Files(context.Background(), &failingRepo{Repository: r, n: n}, []string{dir}, Options{})
		if !errors.Is(err, errInjected) {
			t.Errorf("after %d saves: error %v", n, err)
		}
		snaps, _ := reopen(t, be).Snapshots(context.Background())
		if len(snaps) != 0 {
			t.Errorf("after %d saves: %d snapshots written", n, len(snaps))
		}
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "big"), randomBytes(20<<20, 1))
	r, _ := newRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := Files(ctx, r, []string{dir}, Options{
		ProgressInterval: time.Millisecond,
		Progress: progressFunc(func(s Status) {
			calls++
			if s.BytesDone > 0 {
				cancel()
			}
		}),
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

type progressFunc func(Status)

func (f progressFunc) Update(s Status) { f(s) }

func TestProgressAndDryRun(t *testing.T) {
	dir := buildTree(t)
	r, be := newRepo(t)
	var last Status
	sn, err := Files(context.Background(), r, []string{dir}, Options{
		DryRun:   true,
		Progress: progressFunc(func(s Status) { last = s }),
	})
	if err != nil {
		t.Fatal(err)
	}
	if last.FilesTotal != 10 || last.FilesDone != 10 || last.BytesDone != last.BytesTotal || last.BytesTotal == 0 || !last.ScanDone {
		t.Errorf("final status %+v", last)
	}
	if sn.Summary.DataAdded == 0 || sn.Summary.DataBlobs == 0 || sn.Tree != nil {
		t.Errorf("dry run summary %+v tree %v", sn.Summary, sn.Tree)
	}
	r2 := reopen(t, be)
	if snaps, _ := r2.Snapshots(context.Background()); len(snaps) != 0 {
		t.Errorf("dry run wrote %d snapshots", len(snaps))
	}
	if n := r2.BlobCount(repo.DataBlob); n != 0 {
		t.Errorf("dry run stored %d data blobs", n)
	}
}

// TestOneFileSystem backs up /dev, which holds other mounts (/dev/shm,
// /dev/pts) on most Linux systems.
func TestOneFileSystem(t *testing.T) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no /proc/self/mountinfo: %v", err)
		}
		t.Skip("no /proc/self/mountinfo")
	}
	var sub string
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && filepath.Dir(f[4]) == "/dev" && f[4] != "/dev" {
			sub = f[4]
			break
		}
	}
	if sub == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no mount point below /dev, and CI is set")
		}
		t.Skip("no mount point below /dev")
	}
	r, _ := newRepo(t)
	sn, err := Files(context.Background(), r, []string{"/dev"}, Options{OneFileSystem: true})
	if err != nil {
		t.Fatal(err)
	}
	n := lookup(t, r, sn, sub)
	if n == nil || n.Type != repo.NodeDir {
		t.Fatalf("mount point %s: %+v", sub, n)
	}
	if c := children(t, r, n); len(c) != 0 {
		t.Errorf("mount point %s was descended: %q", sub, c)
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("*.tmp", "/a/b.tmp", []byte("# c\n*.o\n"))
	f.Add("/x/**/[a-c]?/\\*", "/x/1/2/ab/*", []byte(""))
	f.Add("**/**/**", "//a//b/", []byte("\n\n  \t"))
	f.Fuzz(func(t *testing.T, pattern, path string, file []byte) {
		ok, err := Match(pattern, path)
		if err != nil && ok {
			t.Fatal("match with error")
		}
		for _, p := range ParseExcludeFile(file) {
			if p == "" || strings.HasPrefix(p, "#") || strings.TrimSpace(p) != p {
				t.Fatalf("bad pattern %q", p)
			}
		}
	})
}

func TestFilesAndDisksInOneSnapshot(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), []byte("file"))
	data := diskContent(8 << 20)
	r, be := newRepo(t)
	sn, err := Run(context.Background(), r, Sources{
		Paths: []string{dir},
		Disks: []DiskSource{{Name: "vm", Image: newMemImage(data, 64<<10, false)}},
	}, Options{Tags: []string{"job"}})
	if err != nil {
		t.Fatal(err)
	}
	sn2, err := reopen(t, be).LoadSnapshot(context.Background(), sn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sn2.Tree == nil || len(sn2.Disks) != 1 || sn2.Disks[0].Name != "vm" || !slices.Equal(sn2.Paths, []string{dir, "vm"}) {
		t.Errorf("snapshot %+v", sn2)
	}
}
