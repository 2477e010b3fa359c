//go:build darwin || freebsd || linux || netbsd

package backup

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/xattr"

	"github.com/bunkerbackup/bunker/repo"
)

// TestNodeFromInfo checks the metadata recorded on every Unix system
// against what the portable os and os/user calls report, so that each
// system's stat field accessors are exercised wherever the tests run.
func TestNodeFromInfo(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, []byte("hello"))
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	atime := time.Date(2023, 1, 2, 3, 4, 5, 987654321, time.UTC)
	if err := os.Chtimes(file, atime, mtime); err != nil {
		t.Fatal(err)
	}
	xattrOK := xattr.LSet(file, "user.bunker", []byte("v")) == nil
	if err := os.Link(file, filepath.Join(dir, "hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("file", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}

	w := &walker{users: map[uint32]string{}, groups: map[uint32]string{}}
	node := func(name string) *repo.Node {
		t.Helper()
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := w.nodeFromInfo(name, p, fi)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !n.ModTime.Equal(fi.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", name, n.ModTime, fi.ModTime())
		}
		if n.Inode != inodeOf(fi) || n.DeviceID != deviceOf(fi) || n.Inode == 0 {
			t.Errorf("%s: inode %d device %d, stat says %d %d", name, n.Inode, n.DeviceID, inodeOf(fi), deviceOf(fi))
		}
		if n.UID != uint32(os.Getuid()) {
			t.Errorf("%s: uid %d, want %d", name, n.UID, os.Getuid())
		}
		if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil && n.User != u.Username {
			t.Errorf("%s: user %q, want %q", name, n.User, u.Username)
		}
		if g, err := user.LookupGroupId(strconv.FormatUint(uint64(n.GID), 10)); err == nil && n.Group != g.Name {
			t.Errorf("%s: group %q, want %q", name, n.Group, g.Name)
		}
		since := time.Since(n.ChangeTime)
		if since < -time.Minute || since > time.Minute {
			t.Errorf("%s: ctime %v is not about now", name, n.ChangeTime)
		}
		return n
	}

	f, h := node("file"), node("hardlink")
	// A file system with whole-second timestamps keeps neither
	// nanoseconds.
	wantA, wantM := atime, mtime
	if !f.ModTime.Equal(mtime) {
		wantA, wantM = atime.Truncate(time.Second), mtime.Truncate(time.Second)
	}
	if !f.ModTime.Equal(wantM) || !f.AccessTime.Equal(wantA) {
		t.Errorf("file: mtime %v atime %v, want %v %v", f.ModTime, f.AccessTime, wantM, wantA)
	}
	if f.Type != repo.NodeFile || f.Size != 5 || f.Links != 2 || h.Links != 2 ||
		h.Inode != f.Inode || h.DeviceID != f.DeviceID {
		t.Errorf("hard links: %+v / %+v", f, h)
	}
	if xattrOK && (len(f.Xattrs) != 1 || f.Xattrs[0].Name != "user.bunker" || string(f.Xattrs[0].Value) != "v") {
		t.Errorf("xattrs %+v", f.Xattrs)
	}

	l := node("link")
	if l.Type != repo.NodeSymlink || l.LinkTarget != "file" || l.Links != 1 || l.Inode == f.Inode || !l.AccessTime.IsZero() {
		t.Errorf("symlink %+v", l)
	}
	if p := node("fifo"); p.Type != repo.NodeFIFO || p.Mode != 0o600 || p.Rdev != 0 || !p.AccessTime.IsZero() {
		t.Errorf("fifo %+v", p)
	}
	if d := node("sub"); d.Type != repo.NodeDir || d.Links < 2 || d.DeviceID != f.DeviceID || !d.AccessTime.IsZero() {
		t.Errorf("directory %+v", d)
	}
}
