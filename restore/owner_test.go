//go:build linux

package restore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
)

func TestFilesOwnerByName(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("restoring owners needs root, and CI is set")
		}
		t.Skip("restoring owners needs root")
	}
	s := newFakeRepo()
	id := s.saveData([]byte("owned"))
	tree := &repo.Tree{Nodes: []*repo.Node{
		// The name resolves here: it wins over the recorded ids.
		{Name: "by-name", Type: repo.NodeFile, Mode: 0o640, UID: 4000, GID: 4001, User: "nobody", Group: "nogroup",
			ModTime: past2, Content: []repo.Chunk{{ID: &id, Len: 5}}},
		// Unknown names: the ids are used.
		{Name: "by-id", Type: repo.NodeFile, Mode: 0o640, UID: 4000, GID: 4001, User: "no-such-user-x", Group: "no-such-group-x",
			ModTime: past2, Content: []repo.Chunk{{ID: &id, Len: 5}}},
	}}
	tid := s.saveTree(tree)
	dst := t.TempDir()
	if _, err := Files(context.Background(), s, &repo.Snapshot{Tree: &tid}, dst, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]uint32{"by-name": {65534, 65534}, "by-id": {4000, 4001}} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s: owner %d:%d, want %d:%d", name, st.Uid, st.Gid, want[0], want[1])
		}
	}
}

func TestFilesNotRoot(t *testing.T) {
	geteuid = func() int { return 1000 }
	defer func() { geteuid = os.Geteuid }()
	s := newFakeRepo()
	tree := &repo.Tree{Nodes: []*repo.Node{
		{Name: "fifo", Type: repo.NodeFIFO, Mode: 0o600, ModTime: past2,
			Xattrs: []repo.Xattr{{Name: "bogus.namespace", Value: []byte("x")}}},
		{Name: "null", Type: repo.NodeCharDev, Mode: 0o666, Rdev: 0x103, ModTime: past2},
		{Name: "sock", Type: repo.NodeSocket, Mode: 0o777, ModTime: past2},
	}}
	tid := s.saveTree(tree)
	dst := t.TempDir()
	st, err := Files(context.Background(), s, &repo.Snapshot{Tree: &tid}, dst, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Special != 1 || len(st.Warnings) != 2 || !strings.Contains(st.Warnings[0], "/fifo: extended attribute bogus.namespace not restored: operation not supported") ||
		!strings.Contains(st.Warnings[1], "/null: device node not restored (needs root)") {
		t.Errorf("special %d, warnings %q", st.Special, st.Warnings)
	}
	if _, err := os.Lstat(filepath.Join(dst, "null")); !errors.Is(err, os.ErrNotExist) {
		t.Error("device node created without root")
	}
	if _, err := os.Lstat(filepath.Join(dst, "sock")); !errors.Is(err, os.ErrNotExist) {
		t.Error("socket created")
	}
}

func TestDiskDeltaDevice(t *testing.T) {
	s := newFakeRepo()
	content := makeDiskContent(7)
	d, _ := makeDisk(t, s, content, 500)
	// A device is never resized: /dev/zero has no size and is refused.
	f, err := os.OpenFile("/dev/zero", os.O_RDWR, 0)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer f.Close()
	_, err = DiskDelta(context.Background(), s, d, f, DiskOptions{BlobID: s.BlobID})
	if err == nil || !strings.Contains(err.Error(), "smaller than disk sda") {
		t.Errorf("err = %v", err)
	}

	// On a device, non-zero data in holes is overwritten with zeros
	// (no punching), block by block.
	path := filepath.Join(t.TempDir(), "dev")
	junk := bytes.Repeat([]byte{0xee}, 3*4096)
	junk[5000] = 0
	img := make([]byte, 64<<10)
	copy(img[8192+100:], junk)
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	df := openRW(t, path)
	tgt := &deltaTarget{f: df}
	res := tgt.clearHole(4096, 60<<10)
	if res.err != nil {
		t.Fatal(res.err)
	}
	// Four 4 KiB blocks (8192..24576+) hold junk: 100 bytes in, spanning
	// blocks 2, 3, 4 and 5.
	if res.zeroed != 4*4096 || res.written != 4*4096 || res.punched != 0 || res.read != 60<<10 {
		t.Errorf("result %+v", res)
	}
	if !allZero(readAll(t, path)) {
		t.Error("hole not zeroed")
	}
}

func TestParseOverwrite(t *testing.T) {
	for in, want := range map[string]Overwrite{"": OverwriteAlways, "always": OverwriteAlways, "if-changed": OverwriteIfChanged, "never": OverwriteNever} {
		if got, err := ParseOverwrite(in); err != nil || got != want {
			t.Errorf("ParseOverwrite(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseOverwrite("sometimes"); err == nil {
		t.Error("ParseOverwrite accepted sometimes")
	}
	if _, err := Files(context.Background(), newFakeRepo(), &repo.Snapshot{}, t.TempDir(), FileOptions{}); err == nil {
		t.Error("a snapshot without a tree was accepted")
	}
	if _, err := Files(context.Background(), newFakeRepo(), &repo.Snapshot{Tree: &repo.ID{}}, t.TempDir(), FileOptions{Verify: true}); err == nil {
		t.Error("verify without a blob id function was accepted")
	}
}
