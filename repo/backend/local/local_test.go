package local_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/nobodytest"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/backendtest"
	"github.com/bunkerbackup/bunker/repo/backend/local"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return local.New(t.TempDir()) })
}

func TestLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be := local.New(dir)
	n := "ab" + strings.Repeat("0", 62)
	for _, h := range []backend.Handle{
		{Type: backend.ConfigFile}, {Type: backend.PackFile, Name: n}, {Type: backend.KeyFile, Name: n},
		{Type: backend.SnapshotFile, Name: n}, {Type: backend.IndexFile, Name: n}, {Type: backend.LockFile, Name: n},
	} {
		if err := be.Save(ctx, h, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"config", "data/ab/" + n, "keys/" + n, "snapshots/" + n, "index/" + n, "locks/" + n} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.KeyFile, Name: "../evil"}, []byte("x")); err == nil {
		t.Error("saved a name with a slash")
	}
}

func TestTemporaryFilesIgnored(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be := local.New(dir)
	n := "cd" + strings.Repeat("1", 62)
	if err := be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: n}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A temporary file as a killed writer leaves it.
	tmp := filepath.Join(dir, "data", "cd", ".tmp-"+n+"-0123")
	if err := os.WriteFile(tmp, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil })
	if len(names) != 1 || names[0] != n {
		t.Fatalf("listed %v", names)
	}
	var temps []backend.TempFile
	if err := be.ListTemp(ctx, func(f backend.TempFile) error { temps = append(temps, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(temps) != 1 || temps[0].Path != "data/cd/.tmp-"+n+"-0123" || temps[0].Size != int64(len("partial")) || temps[0].ModTime.IsZero() {
		t.Fatalf("ListTemp: %+v", temps)
	}
	for _, bad := range []string{"data/cd/" + n, "../.tmp-x", "/etc/.tmp-x"} {
		if err := be.RemoveTemp(ctx, backend.TempFile{Path: bad}); err == nil {
			t.Errorf("RemoveTemp(%q) succeeded", bad)
		}
	}
	if err := be.RemoveTemp(ctx, temps[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temporary file still there: %v", err)
	}
	if err := be.RemoveTemp(ctx, temps[0]); err != nil {
		t.Fatalf("removing a removed temporary file: %v", err)
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.PackFile, Name: n}); err != nil {
		t.Fatalf("pack gone: %v", err)
	}
}

// TestReadOnlyError saves into a directory this user cannot write to. Root
// writes anywhere, so as root the test runs as the user nobody.
func TestReadOnlyError(t *testing.T) {
	if os.Geteuid() == 0 {
		nobodytest.Rerun(t)
		return
	}
	dir := t.TempDir()
	be := local.New(dir)
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	err := be.Save(context.Background(), backend.Handle{Type: backend.ConfigFile}, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("save into read-only dir: %v", err)
	}
}

// TestKillDuringSave kills a child process in the middle of writing large
// files and checks that no partial file is visible under a final name.
func TestKillDuringSave(t *testing.T) {
	const size = 32 << 20
	if dir := os.Getenv("BUNKER_LOCAL_HELPER"); dir != "" {
		be := local.New(dir)
		data := make([]byte, size)
		for i := 0; ; i++ {
			data[0] = byte(i)
			n := strings.Repeat("e", 63) + string("0123456789abcdef"[i%16])
			if err := be.Save(context.Background(), backend.Handle{Type: backend.PackFile, Name: n}, data); err != nil {
				os.Exit(3)
			}
			if i == 0 {
				_ = os.WriteFile(filepath.Join(dir, "started"), nil, 0o600)
			}
		}
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringSave$")
		cmd.Env = append(os.Environ(), "BUNKER_LOCAL_HELPER="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "started")); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(round*17) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	be := local.New(dir)
	files := 0
	err := be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error {
		files++
		if fi.Size != size {
			t.Errorf("file %s has %d bytes: partial write visible", fi.Name, fi.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("the child wrote no file before it was killed")
	}
}

// TestListTempThroughSymlink finds the temporary files of a repository
// whose path is a symbolic link to its directory, as List finds its files.
func TestListTempThroughSymlink(t *testing.T) {
	ctx := context.Background()
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "repo")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("symlink: %v", err)
	}
	be := local.New(link)
	n := "cd" + strings.Repeat("1", 62)
	if err := be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: n}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(real, "data", "cd", ".tmp-"+n+"-0123")
	if err := os.WriteFile(tmp, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var temps []backend.TempFile
	if err := be.ListTemp(ctx, func(f backend.TempFile) error { temps = append(temps, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(temps) != 1 || temps[0].Path != "data/cd/.tmp-"+n+"-0123" {
		t.Fatalf("ListTemp: %+v", temps)
	}
	if err := be.RemoveTemp(ctx, temps[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temporary file still there: %v", err)
	}
}
