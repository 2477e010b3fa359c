//go:build linux

package restore

import (
	"bytes"
	"crypto/rand"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/xattr"
	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/repo"
)

// store is what the tests need to build snapshots: a Repo that also
// stores. fakeRepo implements it; so does an adapter of the real
// repository.
type store interface {
	Repo
	BlobID([]byte) repo.ID
	saveData([]byte) repo.ID
	saveTree(*repo.Tree) repo.ID
	saveChunkList([]repo.DiskChunk, int) []repo.ID
}

// snapshotDir records the directory src the way a backup would: the
// snapshot path /x is src/x. Files are cut into chunkSize pieces; all-zero
// pieces become holes.
func snapshotDir(t testing.TB, s store, src string, chunkSize int) *repo.Snapshot {
	t.Helper()
	id := saveDir(t, s, src, chunkSize)
	sn := &repo.Snapshot{Time: time.Now(), Tree: &id, Paths: []string{src}}
	sn.ID = s.BlobID([]byte(src))
	return sn
}

func saveDir(t testing.TB, s store, dir string, chunkSize int) repo.ID {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	tree := &repo.Tree{}
	for _, name := range names {
		tree.Nodes = append(tree.Nodes, nodeFor(t, s, filepath.Join(dir, name), name, chunkSize))
	}
	return s.saveTree(tree)
}

func nodeFor(t testing.TB, s store, path, name string, chunkSize int) *repo.Node {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	n := &repo.Node{
		Name:       name,
		Mode:       fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
		UID:        st.Uid,
		GID:        st.Gid,
		ModTime:    fi.ModTime(),
		AccessTime: time.Unix(st.Atim.Sec, st.Atim.Nsec),
		Inode:      st.Ino,
		DeviceID:   st.Dev,
		Links:      uint64(st.Nlink),
		Rdev:       st.Rdev,
	}
	switch {
	case fi.IsDir():
		n.Type = repo.NodeDir
		id := saveDir(t, s, path, chunkSize)
		n.Subtree = &id
	case fi.Mode().IsRegular():
		n.Type = repo.NodeFile
		n.Size = uint64(fi.Size())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n.Content = chunkContent(s, data, chunkSize)
	case fi.Mode()&fs.ModeSymlink != 0:
		n.Type = repo.NodeSymlink
		n.LinkTarget, err = os.Readlink(path)
		if err != nil {
			t.Fatal(err)
		}
	case fi.Mode()&fs.ModeNamedPipe != 0:
		n.Type = repo.NodeFIFO
	case fi.Mode()&fs.ModeCharDevice != 0:
		n.Type = repo.NodeCharDev
	case fi.Mode()&fs.ModeDevice != 0:
		n.Type = repo.NodeBlockDev
	case fi.Mode()&fs.ModeSocket != 0:
		n.Type = repo.NodeSocket
	}
	names, _ := xattr.LList(path)
	sort.Strings(names)
	for _, x := range names {
		v, err := xattr.LGet(path, x)
		if err != nil {
			t.Fatal(err)
		}
		n.Xattrs = append(n.Xattrs, repo.Xattr{Name: x, Value: v})
	}
	return n
}

// chunkContent cuts data into chunkSize pieces (the last shorter), stores
// them and turns all-zero pieces into holes, merging adjacent holes.
func chunkContent(s store, data []byte, chunkSize int) []repo.Chunk {
	var out []repo.Chunk
	for len(data) > 0 {
		n := min(chunkSize, len(data))
		b := data[:n]
		data = data[n:]
		if allZero(b) {
			if k := len(out); k > 0 && out[k-1].ID == nil {
				out[k-1].Len += uint64(n)
				continue
			}
			out = append(out, repo.Chunk{Len: uint64(n)})
			continue
		}
		id := s.saveData(b)
		out = append(out, repo.Chunk{ID: &id, Len: uint64(n)})
	}
	return out
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// compressibleBytes returns text-like data (so a real repository
// compresses it).
func compressibleBytes(r *mrand.Rand, n int) []byte {
	words := []string{"disk ", "backup ", "bunker ", "chunk ", "blob\n", "restore ", "sparse "}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

var (
	past1 = time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	past2 = time.Date(2021, 6, 7, 8, 9, 10, 987654321, time.UTC)
)

func setTimesT(t testing.TB, path string, atime, mtime time.Time) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// blocks returns the bytes allocated to path.
func blocks(t testing.TB, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// compareTrees checks that dst holds what src holds: types, modes, owners,
// mtimes, content, link targets, device numbers, user xattrs and names.
func compareTrees(t testing.TB, src, dst string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		seen[rel] = true
		if rel == "." {
			return nil
		}
		sfi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		dp := filepath.Join(dst, rel)
		dfi, err := os.Lstat(dp)
		if err != nil {
			t.Errorf("%q: not restored: %v", rel, err)
			return nil
		}
		if sfi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		if sfi.Mode() != dfi.Mode() {
			t.Errorf("%q: mode %v, want %v", rel, dfi.Mode(), sfi.Mode())
		}
		ss, ds := sfi.Sys().(*syscall.Stat_t), dfi.Sys().(*syscall.Stat_t)
		if os.Geteuid() == 0 && (ss.Uid != ds.Uid || ss.Gid != ds.Gid) {
			t.Errorf("%q: owner %d:%d, want %d:%d", rel, ds.Uid, ds.Gid, ss.Uid, ss.Gid)
		}
		if !sfi.ModTime().Equal(dfi.ModTime()) {
			t.Errorf("%q: mtime %v, want %v", rel, dfi.ModTime(), sfi.ModTime())
		}
		switch {
		case sfi.Mode().IsRegular():
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(dp)
			if !bytes.Equal(a, b) {
				t.Errorf("%q: content differs (%d vs %d bytes)", rel, len(b), len(a))
			}
		case sfi.Mode()&fs.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(dp)
			if a != b {
				t.Errorf("%q: link target %q, want %q", rel, b, a)
			}
		case sfi.Mode()&fs.ModeDevice != 0:
			if ss.Rdev != ds.Rdev {
				t.Errorf("%q: rdev %x, want %x", rel, ds.Rdev, ss.Rdev)
			}
		}
		if sfi.Mode()&fs.ModeSymlink == 0 {
			for _, name := range []string{"user.bunker", "user.other"} {
				a, aerr := xattr.LGet(p, name)
				b, berr := xattr.LGet(dp, name)
				if (aerr == nil) != (berr == nil) || !bytes.Equal(a, b) {
					t.Errorf("%q: xattr %s = %q (%v), want %q (%v)", rel, name, b, berr, a, aerr)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		if !seen[rel] {
			t.Errorf("%q: restored but not in the source", rel)
		}
		return nil
	})
}

func readAll(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ io.Reader
