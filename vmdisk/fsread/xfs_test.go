package fsread

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// xfsProto writes an mkfs.xfs protofile describing the tree src.
func xfsProto(t testing.TB, src, proto string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	var walk func(dir, indent string)
	walk = func(dir, indent string) {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.Type()&os.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s%s l--777 0 0 %s\n", indent, e.Name(), target)
			case e.IsDir():
				fmt.Fprintf(&b, "%s%s d--755 0 0\n", indent, e.Name())
				walk(p, indent+"  ")
				fmt.Fprintf(&b, "%s$\n", indent)
			default:
				fmt.Fprintf(&b, "%s%s ---644 0 0 %s\n", indent, e.Name(), p)
			}
		}
	}
	walk(src, "  ")
	b.WriteString("$\n")
	if err := os.WriteFile(proto, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestXFS(t *testing.T) {
	needTools(t, "mkfs.xfs")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	// Protofile names cannot hold spaces; mkfs.xfs sets its own modes and
	// times. The library decodes only symlinks kept inside the inode.
	o := treeOpts{links: true}
	writeTree(t, src, o)
	if err := os.Remove(filepath.Join(src, "links/long")); err != nil {
		t.Fatal(err)
	}
	xfsProto(t, src, filepath.Join(dir, "proto"))
	sh(t, dir, "truncate -s 300M xfs.img && mkfs.xfs -q -f -p proto xfs.img")
	fsys := openImage(t, filepath.Join(dir, "xfs.img"))
	if fsys.Type() != "xfs" {
		t.Fatalf("type %s", fsys.Type())
	}
	checkTree(t, fsys, src, o)
	checkSparse(t, fsys, src)
	checkLinks(t, fsys)
}

func FuzzXFS(f *testing.F) {
	needTools(f, "mkfs.xfs")
	dir := f.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "d/e"), 0o755); err != nil {
		f.Fatal(err)
	}
	for name, data := range map[string]string{"a.txt": "alpha\n", "d/b.txt": strings.Repeat("beta ", 2000), "d/e/c": "gamma"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink("d/b.txt", filepath.Join(src, "l")); err != nil {
		f.Fatal(err)
	}
	xfsProto(f, src, filepath.Join(dir, "proto"))
	sh(f, dir, "truncate -s 300M xfs.img && mkfs.xfs -q -f -p proto xfs.img")
	// The fuzz input replaces the head of the image: the superblock, the
	// first allocation group's headers, the root inode chunk and the
	// first data blocks.
	base, err := os.Open(filepath.Join(dir, "xfs.img"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { base.Close() })
	st, err := base.Stat()
	if err != nil {
		f.Fatal(err)
	}
	head := make([]byte, 256<<10)
	if _, err := base.ReadAt(head, 0); err != nil {
		f.Fatal(err)
	}
	f.Add(head)
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := Open(overlay{base, data}, st.Size(), "xfs")
		if err != nil {
			return
		}
		walkBounded(fsys)
	})
}
