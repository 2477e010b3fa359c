// Package nobodytest runs test programs as the unprivileged user nobody (uid
// and gid 65534), so that tests of permission errors run as root too: root
// reads and writes any file whatever its mode. It is for tests only.
//
// A test that needs its permissions checked calls [Rerun] when it runs as
// root, which runs the same test again in a child process as nobody:
//
//	func TestUnreadable(t *testing.T) {
//		if os.Geteuid() == 0 {
//			nobodytest.Rerun(t)
//			return
//		}
//		// the test proper, run as a user that is not root
//	}
package nobodytest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// UID and GID are nobody's user and group ids.
const (
	UID = 65534
	GID = 65534
)

// Executable returns a copy of this program (a hard link where the file
// system allows one) named name in dir, which it creates, and makes dir and
// its parents searchable by everyone so that nobody can run it. A copy made
// before is reused.
func Executable(dir, name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := Searchable(dir); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.Link(self, dst); err == nil {
		return dst, nil
	}
	src, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer src.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return "", err
	}
	return dst, f.Close()
}

// Searchable adds search permission for everyone to dir and each directory
// above it that lacks it.
func Searchable(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if mode := fi.Mode().Perm(); mode&0o011 != 0o011 {
			if err := os.Chmod(dir, mode|0o011); err != nil {
				return err
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// Chown makes nobody the owner of root and everything below it, except the
// directories named in keep.
func Chown(root string, keep ...string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, k := range keep {
			if p == k {
				return filepath.SkipDir
			}
		}
		return os.Lchown(p, UID, GID)
	})
}

// Rerun runs t's test again in a copy of the test binary as nobody, and
// fails t when that run fails, showing its output.
func Rerun(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("switching to the user nobody needs root")
	}
	dir := t.TempDir()
	bin, err := Executable(filepath.Join(dir, "bin"), "test")
	if err != nil {
		t.Fatal(err)
	}
	out, err := rerun(bin, t.Name(), dir)
	if err != nil {
		t.Fatalf("as uid %d: %v\n%s", UID, err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("as uid %d: the test did not run\n%s", UID, out)
	}
	t.Logf("as uid %d:\n%s", UID, out)
}
