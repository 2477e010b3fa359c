package fault_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// mountTmpfs mounts a tmpfs of size (a mount option such as "8m") on a new
// directory and unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func mount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %v: %v: %s", args, err, out)
	}
}

// copyDir copies the regular files of src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	for _, name := range listFiles(t, src) {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"data", "index", "keys", "locks", "snapshots"} {
		os.MkdirAll(filepath.Join(dst, d), 0o700)
	}
}

// TestRepositoryDiskFull backs up more than the repository's file system
// can hold.
func TestRepositoryDiskFull(t *testing.T) {
	needRoot(t, "mounting a small tmpfs")
	bugs := newExpectations(t)
	defer bugs.done()
	mnt := mountTmpfs(t, "8m")
	repoDir := filepath.Join(mnt, "repo")
	initRepo(t, repoDir)
	base := t.TempDir()

	early := filepath.Join(base, "early")
	genTree(t, early, treeSpec{seed: 11, large: 1, largeSize: 2 << 20, small: 20, smallSize: 4 << 10})
	first, _ := backup(t, 0, repoDir, early)

	big := filepath.Join(base, "big")
	genTree(t, big, treeSpec{seed: 12, large: 3, largeSize: 5 << 20, small: 10, smallSize: 4 << 10})
	res := mustRun(t, 1, "backup", "-r", repoDir, big)
	t.Logf("%s", res)
	wantStderr(t, res,
		`(?m)^bunker: error: .*no space left on device`,
		`(?m)^bunker: error: .*`+regexp.QuoteMeta(repoDir),
	)
	if sn := snapshotFiles(t, repoDir); !slices.Equal(sn, []string{first.SnapshotID}) {
		t.Errorf("after the failed backup the snapshots are %v, want only %s", sn, first.SnapshotID)
	}
	if left := listFiles(t, filepath.Join(repoDir, "locks")); len(left) > 0 {
		t.Errorf("the failed backup left its lock: %v", left)
	}
	var tmp []string
	for _, name := range listFiles(t, repoDir) {
		if strings.HasPrefix(filepath.Base(name), ".tmp-") {
			tmp = append(tmp, name)
		}
	}
	if len(tmp) > 0 {
		t.Errorf("the failed backup left temporary files that fill the disk: %v", tmp)
	}
	bugs.check(strings.Contains(res.stderr, "bunker: hint: "), "hint-enospc",
		"a backup that fills the repository's disk says what failed but not what to do (no 'bunker: hint:' line, e.g. free space or move the repository)")

	// A copy on a file system with room passes check as it is.
	cp := filepath.Join(base, "copy")
	copyDir(t, repoDir, cp)
	checkRepo(t, cp)
	restoreAndCompare(t, cp, first.SnapshotID, early)

	// With room made, the repository passes check in place, restores, and
	// the backup goes through.
	mount(t, "-o", "remount,size=64m", mnt)
	checkRepo(t, repoDir)
	restoreAndCompare(t, repoDir, first.SnapshotID, early)
	second, _ := backup(t, 0, repoDir, big)
	checkRepo(t, repoDir)
	restoreAndCompare(t, repoDir, second.SnapshotID, big)
}

// TestRepositoryReadOnly backs up into a repository that cannot be written.
func TestRepositoryReadOnly(t *testing.T) {
	bugs := newExpectations(t)
	defer bugs.done()
	base := t.TempDir()
	var repoDir string
	var makeReadOnly, makeWritable func()
	if os.Geteuid() == 0 {
		mnt := mountTmpfs(t, "32m")
		repoDir = filepath.Join(mnt, "repo")
		makeReadOnly = func() { mount(t, "-o", "remount,ro", mnt) }
		makeWritable = func() { mount(t, "-o", "remount,rw", mnt) }
	} else {
		repoDir = filepath.Join(base, "repo")
		// Directories are made read-only after the files in them, and
		// writable before them, so that each stays reachable.
		var dirs []string
		chmodAll := func(dirMode, fileMode os.FileMode, writable bool) {
			if dirs == nil {
				entries, _ := os.ReadDir(filepath.Join(repoDir, "data"))
				for _, e := range entries {
					dirs = append(dirs, filepath.Join("data", e.Name()))
				}
				dirs = append(dirs, "data", "index", "keys", "locks", "snapshots", "")
			}
			order := slices.Clone(dirs)
			if writable {
				slices.Reverse(order)
			}
			files := func() {
				for _, name := range listFiles(t, repoDir) {
					os.Chmod(filepath.Join(repoDir, name), fileMode)
				}
			}
			if !writable {
				files()
			}
			for _, d := range order {
				if err := os.Chmod(filepath.Join(repoDir, d), dirMode); err != nil {
					t.Fatal(err)
				}
			}
			if writable {
				files()
			}
		}
		makeReadOnly = func() { chmodAll(0o500, 0o400, false) }
		makeWritable = func() { chmodAll(0o700, 0o600, true) }
		t.Cleanup(makeWritable)
	}
	initRepo(t, repoDir)
	early := filepath.Join(base, "early")
	genTree(t, early, treeSpec{seed: 21, large: 1, largeSize: 2 << 20, small: 20, smallSize: 4 << 10})
	first, _ := backup(t, 0, repoDir, early)

	makeReadOnly()
	res := mustRun(t, 1, "backup", "-r", repoDir, early)
	t.Logf("%s", res)
	wantStderr(t, res,
		`(?m)^bunker: error: .*(read-only file system|permission denied)`,
		`(?m)^bunker: error: .*`+regexp.QuoteMeta(repoDir),
	)
	if sn := snapshotFiles(t, repoDir); !slices.Equal(sn, []string{first.SnapshotID}) {
		t.Errorf("after the failed backup the snapshots are %v, want only %s", sn, first.SnapshotID)
	}
	bugs.check(strings.Contains(res.stderr, "bunker: hint: "), "hint-readonly",
		"a backup into a read-only repository says what failed but not what to do (no 'bunker: hint:' line)")
	makeWritable()
	checkRepo(t, repoDir)
	restoreAndCompare(t, repoDir, first.SnapshotID, early)
}
