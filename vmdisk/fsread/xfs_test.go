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
