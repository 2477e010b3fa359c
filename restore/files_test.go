//go:build linux

package restore

import (
	"bytes"
	"context"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/xattr"
	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/repo"
)

const sparseSize = 8 << 20

// makeTree builds a source tree with every node type bunker restores.
func makeTree(t testing.TB) string {
	t.Helper()
	src := t.TempDir()
	r := mrand.New(mrand.NewPCG(1, 2))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a", "b"), 0o755))
	writeFile(t, filepath.Join(src, "a", "notes.txt"), compressibleBytes(r, 3000), 0o644)
	writeFile(t, filepath.Join(src, "a", "b", "big.bin"), randBytes(1<<20+12345), 0o600)
	writeFile(t, filepath.Join(src, "a", "b", "deep.txt"), []byte("deep\n"), 0o640)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o644)
	writeFile(t, filepath.Join(src, "setuid"), []byte("#!/bin/sh\n"), 0o755|os.ModeSetuid|os.ModeSetgid)
	must(os.Chmod(filepath.Join(src, "setuid"), 0o755|os.ModeSetuid|os.ModeSetgid))

	// Sparse: data at the start and in the middle, a hole at the end.
	sp, err := os.Create(filepath.Join(src, "sparse.img"))
	must(err)
	must(sp.Truncate(sparseSize))
	_, err = sp.WriteAt(randBytes(64<<10), 0)
	must(err)
	_, err = sp.WriteAt(randBytes(100<<10), 4<<20)
	must(err)
	must(sp.Close())

	// Hard links.
	writeFile(t, filepath.Join(src, "h1"), []byte("linked content\n"), 0o644)
	must(os.Link(filepath.Join(src, "h1"), filepath.Join(src, "h2")))
	must(os.Link(filepath.Join(src, "h1"), filepath.Join(src, "a", "h3")))

	must(os.Symlink("a/notes.txt", filepath.Join(src, "link")))
	must(os.Symlink("/nonexistent/dangling", filepath.Join(src, "dangling")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(unix.Mknod(filepath.Join(src, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))))
		must(os.Lchown(filepath.Join(src, "a", "notes.txt"), 1234, 5678))
		must(os.Lchown(filepath.Join(src, "link"), 4321, 8765))
	}

	// Names that are not UTF-8 or hold a newline.
	writeFile(t, filepath.Join(src, "bad\xff\xfename"), []byte("latin1\n"), 0o644)
	writeFile(t, filepath.Join(src, "new\nline"), []byte("newline\n"), 0o644)

	// Extended attributes.
	must(xattr.Set(filepath.Join(src, "a", "notes.txt"), "user.bunker", []byte("value\x00binary")))
	must(xattr.Set(filepath.Join(src, "a"), "user.other", []byte("on a dir")))

	// Special modes on directories, and a read-only one with content.
	must(os.Mkdir(filepath.Join(src, "sticky"), 0o755))
	must(os.Chmod(filepath.Join(src, "sticky"), 0o777|os.ModeSticky))
	must(os.Mkdir(filepath.Join(src, "sgid"), 0o755))
	must(os.Chmod(filepath.Join(src, "sgid"), 0o2775|os.ModeSetgid))
	must(os.Mkdir(filepath.Join(src, "ro"), 0o755))
	writeFile(t, filepath.Join(src, "ro", "inside"), []byte("in a read-only dir\n"), 0o444)
	must(os.Chmod(filepath.Join(src, "ro"), 0o555))

	// Times, deepest first so directory times stick.
	var paths []string
	filepath.Walk(src, func(p string, _ os.FileInfo, _ error) error {
		paths = append(paths, p)
		return nil
	})
	for i := len(paths) - 1; i > 0; i-- {
		setTimesT(t, paths[i], past1, past2.Add(-time1(i)))
	}
	return src
}

func time1(i int) time.Duration { return time.Duration(i) * time.Second }

func restoreOpts(s store) FileOptions {
	return FileOptions{BlobID: s.BlobID}
}

func TestFilesRoundTrip(t *testing.T) {
	for _, workers := range []int{1, 0} {
		s := newFakeRepo()
		src := makeTree(t)
		sn := snapshotDir(t, s, src, 64<<10)
		dst := filepath.Join(t.TempDir(), "target")
		opts := restoreOpts(s)
		opts.Workers = workers
		opts.Verify = true
		var prog countingProgress
		opts.Progress = &prog
		st, err := Files(context.Background(), s, sn, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		// atime restored from the snapshot.
		n, err := Lookup(context.Background(), s, *sn.Tree, "/a/notes.txt")
		if err != nil {
			t.Fatal(err)
		}
		var ust unix.Stat_t
		unix.Lstat(filepath.Join(dst, "a", "notes.txt"), &ust)
		if got := ust.Atim.Nano(); got != n.AccessTime.UnixNano() {
			t.Errorf("atime %d, want %d", got, n.AccessTime.UnixNano())
		}
		compareTrees(t, src, dst)

		// 12 regular files, of which h2 and a/h3 are links to h1.
		if st.Files != 10 || st.Hardlinks != 2 || st.Verified != 10 {
			t.Errorf("files %d, hard links %d, verified %d; want 10, 2, 10", st.Files, st.Hardlinks, st.Verified)
		}
		if st.Dirs != 5 || st.Symlinks != 2 {
			t.Errorf("dirs %d, symlinks %d; want 5, 2", st.Dirs, st.Symlinks)
		}
		wantSpecial := uint64(1)
		if os.Geteuid() == 0 {
			wantSpecial = 3
		}
		if st.Special != wantSpecial || len(st.Failed) != 0 {
			t.Errorf("special %d, failed %v; want %d, none", st.Special, st.Failed, wantSpecial)
		}
		if prog.items.Load() != prog.totalItems.Load() || prog.bytes.Load() != prog.totalBytes.Load() || prog.totalItems.Load() != 17 {
			t.Errorf("progress: %d/%d items, %d/%d bytes", prog.items.Load(), prog.totalItems.Load(), prog.bytes.Load(), prog.totalBytes.Load())
		}

		// Hard links are links.
		a, _ := os.Stat(filepath.Join(dst, "h1"))
		b, _ := os.Stat(filepath.Join(dst, "h2"))
		c, _ := os.Stat(filepath.Join(dst, "a", "h3"))
		if !os.SameFile(a, b) || !os.SameFile(a, c) {
			t.Error("hard links restored as separate files")
		}
		if n := a.Sys().(*syscall.Stat_t).Nlink; n != 3 {
			t.Errorf("h1 has %d links, want 3", n)
		}

		// The sparse file keeps its holes: only its 164 KiB of data are
		// allocated (plus file system rounding).
		sp := filepath.Join(dst, "sparse.img")
		if fi, _ := os.Stat(sp); fi.Size() != sparseSize {
			t.Errorf("sparse.img size %d, want %d", fi.Size(), sparseSize)
		}
		if got := blocks(t, sp); got > 164<<10+64<<10 {
			t.Errorf("sparse.img allocates %d bytes, want about %d", got, 164<<10)
		}
		// The sparse file's second chunk holds 28 KiB of zeros after its
		// 36 KiB of data.
		if st.Bytes != uint64(3000+1<<20+12345+5+10+192<<10+15+7+8+19) {
			t.Errorf("bytes written %d", st.Bytes)
		}

	}
}

type countingProgress struct {
	totalItems, totalBytes, items, bytes atomic.Int64
}

func (p *countingProgress) Total(items, bytes int64) {
	p.totalItems.Store(items)
	p.totalBytes.Store(bytes)
}
func (p *countingProgress) Done(items, bytes int64) {
	p.items.Add(items)
	p.bytes.Add(bytes)
}

func TestFilesIncludeExclude(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 64<<10)
	list := func(dst string) []string {
		var out []string
		filepath.Walk(dst, func(p string, _ os.FileInfo, _ error) error {
			rel, _ := filepath.Rel(dst, p)
			if rel != "." {
				out = append(out, rel)
			}
			return nil
		})
		return out
	}
	for _, tc := range []struct {
		name             string
		include, exclude []string
		want             string
	}{
		{"include dir", []string{"/a/b"}, nil, "a a/b a/b/big.bin a/b/deep.txt"},
		{"include glob", []string{"*.txt"}, nil, "a a/b a/b/deep.txt a/notes.txt"},
		{"include doublestar", []string{"/a/**/deep.txt"}, nil, "a a/b a/b/deep.txt"},
		{"include and exclude", []string{"/a"}, []string{"big.bin", "h3"}, "a a/b a/b/deep.txt a/notes.txt"},
		{"exclude dir", nil, []string{"/a", "sparse*", "ro", "s*", "bad*", "new*", "null", "blk", "fifo", "d*", "l*", "e*"}, "h1 h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			opts := restoreOpts(s)
			opts.Include, opts.Exclude = tc.include, tc.exclude
			if _, err := Files(context.Background(), s, sn, dst, opts); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(list(dst), " "); got != tc.want {
				t.Errorf("restored %q, want %q", got, tc.want)
			}
			// Directories leading to included files get their metadata.
			if fi, err := os.Stat(filepath.Join(dst, "a")); err == nil && !fi.ModTime().Equal(mtimeOf(t, filepath.Join(src, "a"))) {
				t.Errorf("a: mtime %v not restored", fi.ModTime())
			}
		})
	}
	if _, err := Files(context.Background(), s, sn, t.TempDir(), FileOptions{Include: []string{"[x"}}); err == nil {
		t.Error("a malformed pattern was accepted")
	}
}

func mtimeOf(t testing.TB, p string) time.Time {
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

func TestFilesOverwrite(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 64<<10)
	ctx := context.Background()

	prepare := func(t *testing.T) string {
		dst := t.TempDir()
		if _, err := Files(ctx, s, sn, dst, restoreOpts(s)); err != nil {
			t.Fatal(err)
		}
		// Same size and mtime, different content: if-changed trusts
		// size and mtime (like restic) and leaves it.
		writeFile(t, filepath.Join(dst, "a", "b", "deep.txt"), []byte("DEEP\n"), 0o640)
		setTimesT(t, filepath.Join(dst, "a", "b", "deep.txt"), past1, mtimeOf(t, filepath.Join(src, "a", "b", "deep.txt")))
		// Same content, new mtime: if-changed compares content and
		// leaves it, restoring the mtime.
		setTimesT(t, filepath.Join(dst, "a", "notes.txt"), past1, past1)
		// Different content and size: replaced unless never.
		writeFile(t, filepath.Join(dst, "h1"), []byte("changed\n"), 0o644)
		// Same size, different content, new mtime: replaced.
		big := readAll(t, filepath.Join(dst, "a", "b", "big.bin"))
		big[777] ^= 1
		writeFile(t, filepath.Join(dst, "a", "b", "big.bin"), big, 0o600)
		// A symlink pointing elsewhere, a file where a dir was.
		os.Remove(filepath.Join(dst, "link"))
		os.Symlink("elsewhere", filepath.Join(dst, "link"))
		return dst
	}
	check := func(t *testing.T, dst, rel, want string) {
		t.Helper()
		if got := string(readAll(t, filepath.Join(dst, rel))); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}

	t.Run("never", func(t *testing.T) {
		dst := prepare(t)
		opts := restoreOpts(s)
		opts.Overwrite = OverwriteNever
		st, err := Files(ctx, s, sn, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		check(t, dst, "h1", "changed\n")
		check(t, dst, "a/b/deep.txt", "DEEP\n")
		if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "elsewhere" {
			t.Errorf("link = %q", l)
		}
		if st.Files != 0 || st.Skipped == 0 {
			t.Errorf("files %d skipped %d", st.Files, st.Skipped)
		}
	})
	t.Run("if-changed", func(t *testing.T) {
		dst := prepare(t)
		opts := restoreOpts(s)
		opts.Overwrite = OverwriteIfChanged
		st, err := Files(ctx, s, sn, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		check(t, dst, "h1", "linked content\n")
		check(t, dst, "a/b/deep.txt", "DEEP\n")
		if !bytes.Equal(readAll(t, filepath.Join(dst, "a", "b", "big.bin")), readAll(t, filepath.Join(src, "a", "b", "big.bin"))) {
			t.Error("big.bin not replaced")
		}
		if got, want := mtimeOf(t, filepath.Join(dst, "a", "notes.txt")), mtimeOf(t, filepath.Join(src, "a", "notes.txt")); !got.Equal(want) {
			t.Errorf("notes.txt mtime %v, want %v", got, want)
		}
		if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "a/notes.txt" {
			t.Errorf("link = %q", l)
		}
		// Written: h1 and big.bin (h2, a/h3 relinked to the new h1).
		if st.Files != 2 || st.Hardlinks != 2 || st.Symlinks != 1 {
			t.Errorf("files %d hardlinks %d symlinks %d; want 2, 2, 1", st.Files, st.Hardlinks, st.Symlinks)
		}
		a, _ := os.Stat(filepath.Join(dst, "h1"))
		b, _ := os.Stat(filepath.Join(dst, "h2"))
		if !os.SameFile(a, b) {
			t.Error("h2 not relinked to the new h1")
		}
	})
	t.Run("always", func(t *testing.T) {
		dst := prepare(t)
		// A directory where the snapshot has a file, a file where it
		// has a directory.
		os.Remove(filepath.Join(dst, "empty"))
		os.MkdirAll(filepath.Join(dst, "empty", "x"), 0o755)
		os.RemoveAll(filepath.Join(dst, "sticky"))
		writeFile(t, filepath.Join(dst, "sticky"), []byte("x"), 0o644)
		if _, err := Files(ctx, s, sn, dst, restoreOpts(s)); err != nil {
			t.Fatal(err)
		}
		compareTrees(t, src, dst)
	})
}

func TestFilesVerifyDetectsBadContent(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 64<<10)
	// The repository hands out wrong bytes for one chunk of big.bin
	// without an error; verify must notice.
	n, err := Lookup(context.Background(), s, *sn.Tree, "/a/b/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	id := *n.Content[3].ID
	bad := append([]byte(nil), s.data[id]...)
	bad[10] ^= 0x80
	s.lies[id] = bad

	var mu sync.Mutex
	var reported []string
	opts := restoreOpts(s)
	opts.Verify = true
	opts.OnError = func(p string, err error) error {
		mu.Lock()
		reported = append(reported, p+": "+err.Error())
		mu.Unlock()
		return nil
	}
	st, err := Files(context.Background(), s, sn, t.TempDir(), opts)
	var ie *IncompleteError
	if !errors.As(err, &ie) || len(ie.Failed) != 1 || ie.Failed[0].Path != "/a/b/big.bin" {
		t.Fatalf("err = %v, want an IncompleteError for /a/b/big.bin", err)
	}
	if len(reported) != 1 || !strings.Contains(reported[0], "verify: content differs at offset 196608") {
		t.Errorf("reported %q", reported)
	}
	if st.Verified != 9 {
		t.Errorf("verified %d files, want 9", st.Verified)
	}
}

func TestFilesDamagedBlob(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 64<<10)
	n, err := Lookup(context.Background(), s, *sn.Tree, "/a/b/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	s.damaged[*n.Content[5].ID] = true

	// Without OnError the restore stops at the first error.
	_, err = Files(context.Background(), s, sn, t.TempDir(), restoreOpts(s))
	if err == nil || !strings.Contains(err.Error(), "/a/b/big.bin") || !strings.Contains(err.Error(), "ciphertext verification failed") {
		t.Fatalf("err = %v", err)
	}

	var reported []string
	var mu sync.Mutex
	opts := restoreOpts(s)
	opts.OnError = func(p string, err error) error {
		mu.Lock()
		reported = append(reported, p)
		mu.Unlock()
		return nil
	}
	dst := t.TempDir()
	st, err := Files(context.Background(), s, sn, dst, opts)
	var ie *IncompleteError
	if !errors.As(err, &ie) || len(ie.Failed) != 1 || ie.Failed[0].Path != "/a/b/big.bin" {
		t.Fatalf("err = %v, want an IncompleteError for /a/b/big.bin", err)
	}
	if !strings.Contains(err.Error(), "could not restore 1 item: /a/b/big.bin: restore 65536 bytes at offset 327680") {
		t.Errorf("message %q", err)
	}
	if strings.Join(reported, ",") != "/a/b/big.bin" || len(st.Failed) != 1 {
		t.Errorf("reported %v, stats failed %v", reported, st.Failed)
	}
	// Everything else is restored; compare after setting the damaged file
	// aside.
	got := readAll(t, filepath.Join(dst, "a", "b", "big.bin"))
	want := readAll(t, filepath.Join(src, "a", "b", "big.bin"))
	if len(got) != len(want) || !bytes.Equal(got[:327680], want[:327680]) || !bytes.Equal(got[393216:], want[393216:]) || !allZero(got[327680:393216]) {
		t.Error("the damaged file does not hold everything but the damaged chunk")
	}
	os.Remove(filepath.Join(dst, "a", "b", "big.bin"))
	os.Remove(filepath.Join(src, "a", "b", "big.bin"))
	// Its directory's mtime changed by the removal in both trees.
	setTimesT(t, filepath.Join(dst, "a", "b"), past1, past1)
	setTimesT(t, filepath.Join(src, "a", "b"), past1, past1)
	compareTrees(t, src, dst)

	// A damaged tree loses its subtree only.
	s.damaged[*n.Content[5].ID] = false
	a, _ := Lookup(context.Background(), s, *sn.Tree, "/a")
	s.damaged[*a.Subtree] = true
	dst = t.TempDir()
	reported = nil
	_, err = Files(context.Background(), s, sn, dst, opts)
	if !errors.As(err, &ie) || len(ie.Failed) != 1 || ie.Failed[0].Path != "/a" {
		t.Fatalf("err = %v, want an IncompleteError for /a", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "h1")); err != nil {
		t.Error("h1 not restored next to a damaged tree")
	}
}

func TestFilesCancel(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 4<<10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Files(ctx, s, sn, t.TempDir(), restoreOpts(s)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

type cancelProgress struct {
	cancel context.CancelFunc
	n      atomic.Int64
}

func (p *cancelProgress) Total(items, bytes int64) {}
func (p *cancelProgress) Done(items, bytes int64) {
	if p.n.Add(items) == 3 {
		p.cancel()
	}
}

func TestFilesCancelMidway(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 4<<10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := restoreOpts(s)
	opts.Progress = &cancelProgress{cancel: cancel}
	opts.Workers = 1
	st, err := Files(ctx, s, sn, t.TempDir(), opts)
	if !errors.Is(err, context.Canceled) || len(st.Failed) != 0 {
		t.Errorf("err = %v, failed %v; want context.Canceled and no failures", err, st.Failed)
	}
}

func TestFilesRejectsBadNames(t *testing.T) {
	s := newFakeRepo()
	for _, name := range []string{"..", ".", "a/b", "", "x\x00y"} {
		id := s.saveData([]byte("evil"))
		tree := &repo.Tree{Nodes: []*repo.Node{{Name: name, Type: repo.NodeFile, Mode: 0o644, Content: []repo.Chunk{{ID: &id, Len: 4}}}}}
		tid := s.saveTree(tree)
		dir := t.TempDir()
		dst := filepath.Join(dir, "target")
		_, err := Files(context.Background(), s, &repo.Snapshot{Tree: &tid}, dst, FileOptions{})
		if err == nil || !strings.Contains(err.Error(), "invalid file name") {
			t.Errorf("name %q: err = %v", name, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("name %q: wrote outside the target: %v", name, ents)
		}
	}
}

func TestDump(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 64<<10)
	for _, p := range []string{"/sparse.img", "/a/b/big.bin", "/empty", "/bad\xff\xfename"} {
		n, err := Lookup(context.Background(), s, *sn.Tree, p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Dump(context.Background(), s, n, &buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), readAll(t, filepath.Join(src, p))) {
			t.Errorf("%q: dumped content differs", p)
		}
	}
	if _, err := Lookup(context.Background(), s, *sn.Tree, "/a/missing"); err == nil || !strings.Contains(err.Error(), "/a/missing not found") {
		t.Errorf("lookup of a missing path: %v", err)
	}
	if _, err := Lookup(context.Background(), s, *sn.Tree, "/h1/x"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("lookup below a file: %v", err)
	}
	n, _ := Lookup(context.Background(), s, *sn.Tree, "/a")
	if err := Dump(context.Background(), s, n, &bytes.Buffer{}); err == nil {
		t.Error("dump of a directory succeeded")
	}
}
