package fault_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/local"
)

// waitForFile waits up to 20 seconds for a file not in before to appear in
// dir while p runs.
func waitForFile(t *testing.T, dir string, before []string, p *proc) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, name := range listFiles(t, dir) {
			if !slices.Contains(before, name) {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("bunker ended before a file appeared in %s:\n%s", dir, p.wait(t))
		default:
		}
	}
	t.Fatalf("no file appeared in %s", dir)
}

// TestInterrupt sends SIGINT to a running backup.
func TestInterrupt(t *testing.T) {
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	early := filepath.Join(base, "early")
	genTree(t, early, treeSpec{seed: 31, large: 1, largeSize: 1 << 20, small: 20, smallSize: 4 << 10})
	first, _ := backup(t, 0, repoDir, early)

	src := filepath.Join(base, "src")
	genTree(t, src, treeSpec{seed: 32, large: 10, largeSize: 8 << 20, small: 200, smallSize: 4 << 10, dirsPerLvl: 4})
	dataDir := filepath.Join(repoDir, "data")
	before := listFiles(t, dataDir)
	p := start(t, "backup", "-r", repoDir, "--json", src)
	// Interrupt once the backup has stored its first pack: midway, with
	// data stored that no index or snapshot references yet.
	waitForFile(t, dataDir, before, p)
	if !p.signalAfter(0, syscall.SIGINT) {
		t.Fatalf("the backup finished before it could be interrupted:\n%s", p.wait(t))
	}
	res := p.wait(t)
	if res.code != 130 || res.signal != "" {
		t.Fatalf("want exit status 130 after SIGINT:\n%s", res)
	}
	// With --json, stderr holds only JSON lines.
	wantStderr(t, res, `(?m)^\{"message_type":"exit_error","code":130,"message":"interrupted"\}$`)
	if strings.Contains(res.stderr, "bunker: error:") {
		t.Errorf("--json run printed a human error line:\n%s", res)
	}
	if sn := snapshotFiles(t, repoDir); !slices.Equal(sn, []string{first.SnapshotID}) {
		t.Errorf("after the interrupted backup the snapshots are %v, want only %s", sn, first.SnapshotID)
	}
	if left := listFiles(t, filepath.Join(repoDir, "locks")); len(left) > 0 {
		t.Errorf("the interrupted backup left its lock: %v", left)
	}
	checkRepo(t, repoDir)
	restoreAndCompare(t, repoDir, first.SnapshotID, early)
	second, _ := backup(t, 0, repoDir, src)
	restoreAndCompare(t, repoDir, second.SnapshotID, src)
}

// TestExitCodes checks the exit status and message of a wrong password, a
// missing repository and a repository locked by another process.
func TestExitCodes(t *testing.T) {
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	src := filepath.Join(base, "src")
	genTree(t, src, treeSpec{seed: 51, small: 10, smallSize: 1 << 10})
	first, _ := backup(t, 0, repoDir, src)

	t.Run("wrong password", func(t *testing.T) {
		pw := filepath.Join(base, "pw")
		if err := os.WriteFile(pw, []byte("not the password\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"snapshots"}, {"backup", src}, {"check"}, {"restore", "latest", "--target", t.TempDir()}} {
			res := mustRun(t, 12, append(append([]string{}, args...), "-r", repoDir, "--password-file", pw)...)
			wantStderr(t, res, `(?m)^bunker: error: .*wrong password`, `(?m)^bunker: hint: `)
		}
	})
	t.Run("no repository", func(t *testing.T) {
		missing := filepath.Join(base, "missing")
		for _, args := range [][]string{{"snapshots"}, {"backup", src}, {"check"}, {"unlock"}} {
			res := mustRun(t, 10, append(append([]string{}, args...), "-r", missing)...)
			wantStderr(t, res, `(?m)^bunker: error: .*`+regexp.QuoteMeta(missing)+`.*repository does not exist`, `(?m)^bunker: hint: .*bunker init`)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Errorf("a command created %s", missing)
		}
	})
	t.Run("locked", func(t *testing.T) {
		holder := holdLock(t, repoDir)
		host, _ := os.Hostname()
		for _, args := range [][]string{{"backup", src}, {"check"}, {"restore", "latest", "--target", t.TempDir()}} {
			res := mustRun(t, 11, append(append([]string{}, args...), "-r", repoDir)...)
			wantStderr(t, res, `(?m)^bunker: error: .*locked.*exclusive lock [0-9a-f]{8} held by PID `+strconv.Itoa(holder.Process.Pid)+` on `+regexp.QuoteMeta(host))
		}
		// unlock keeps the lock of a live process.
		mustRun(t, 0, "unlock", "-r", repoDir)
		mustRun(t, 11, "snapshots", "-r", repoDir)

		// Once the holder is killed its lock is stale: it blocks nobody and
		// unlock removes it.
		holder.Process.Kill()
		holder.Wait()
		mustRun(t, 0, "snapshots", "-r", repoDir)
		res := mustRun(t, 0, "unlock", "-r", repoDir)
		if !regexp.MustCompile(`(?m)^removed 1 stale lock$`).MatchString(res.stdout) {
			t.Errorf("unlock did not remove the stale lock:\n%s", res)
		}
		if sn := snapshotFiles(t, repoDir); !slices.Equal(sn, []string{first.SnapshotID}) {
			t.Errorf("snapshots are %v, want only %s", sn, first.SnapshotID)
		}
		mustRun(t, 0, "backup", "-r", repoDir, src)
	})
}

// holdLock starts a second process (this test binary, see TestMain) that
// locks repoDir exclusively through the library and waits to be killed.
func holdLock(t *testing.T, repoDir string) *exec.Cmd {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "locked")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FAULT_HOLD_LOCK="+repoDir, "FAULT_HOLD_LOCK_MARKER="+marker)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock holder did not lock the repository")
		}
	}
}

// lockHolder is the second process of holdLock.
func lockHolder(dir, marker string) {
	ctx := context.Background()
	r, err := repo.Open(ctx, local.New(dir), password)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lock holder:", err)
		os.Exit(1)
	}
	if _, err := r.Lock(ctx, true); err != nil {
		fmt.Fprintln(os.Stderr, "lock holder:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		os.Exit(1)
	}
	select {}
}

// TestSourceReadErrors backs up a tree in which, as root can arrange with
// bind mounts, a file cannot be read even by root (a write-only sysfs
// attribute: 4096 bytes by stat, EACCES on open) and a directory has
// vanished (the /proc directory of a process that exited after it was
// mounted: ESRCH on open).
func TestSourceReadErrors(t *testing.T) {
	needRoot(t, "bind mounts")
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	src := filepath.Join(base, "src")
	genTree(t, src, treeSpec{seed: 42, large: 2, largeSize: 1 << 20, small: 30, smallSize: 4 << 10, dirsPerLvl: 2})
	bind := func(from, to string) {
		mount(t, "--bind", from, to)
		t.Cleanup(func() { exec.Command("umount", to).Run() })
	}
	var failing []string // what must be named in warnings
	if attr := writeOnlySysfsFile(); attr != "" {
		p := filepath.Join(src, "d00", "writeonly.bin")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		bind(attr, p)
		failing = append(failing, p)
	} else {
		t.Log("no write-only sysfs attribute found: only the vanished directory is tested")
	}
	gone := filepath.Join(src, "d01", "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "120")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	bind(fmt.Sprintf("/proc/%d", sleeper.Process.Pid), gone)
	sleeper.Process.Kill()
	sleeper.Wait()
	failing = append(failing, gone)

	res := run(t, "backup", "-r", repoDir, src)
	t.Logf("%s", res)
	if res.code != 3 {
		t.Fatalf("want exit status 3:\n%s", res)
	}
	for _, p := range failing {
		wantStderr(t, res, `(?m)^bunker: warning: .*`+regexp.QuoteMeta(p)+`: (permission denied|no such process)$`)
	}
	wantStderr(t, res, fmt.Sprintf(`(?m)^bunker: error: snapshot [0-9a-f]{8} saved, but %d sources? could not be read$`, len(failing)))
	out := restoreIncomplete(t, repoDir)
	skip := map[string]bool{}
	for _, p := range failing {
		if err := exec.Command("umount", p).Run(); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(src, p)
		skip[rel] = true
	}
	compareTrees(t, src, filepath.Join(out, src), skip)
}

// writeOnlySysfsFile returns a sysfs attribute that only root may write and
// nobody may read, or "".
func writeOnlySysfsFile() string {
	for _, pattern := range []string{"/sys/devices/*/*/rescan", "/sys/bus/*/rescan", "/sys/class/*/*", "/sys/devices/*/*/*/remove", "/sys/kernel/*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			fi, err := os.Stat(m)
			if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o200 && fi.Size() > 0 {
				if f, err := os.Open(m); err == nil {
					f.Close()
					continue
				}
				return m
			}
		}
	}
	return ""
}

// restoreIncomplete checks that the repository at repoDir holds one
// snapshot, marked incomplete, that check accepts it, and restores it into
// a new directory, which it returns.
func restoreIncomplete(t *testing.T, repoDir string) string {
	t.Helper()
	sn := snapshotFiles(t, repoDir)
	if len(sn) != 1 {
		t.Fatalf("want one snapshot, have %v", sn)
	}
	list := mustRun(t, 0, "snapshots", "-r", repoDir, "--json")
	if !regexp.MustCompile(`"incomplete":\s*true`).MatchString(list.stdout) {
		t.Errorf("the snapshot is not marked incomplete:\n%s", list)
	}
	checkRepo(t, repoDir)
	out := t.TempDir()
	mustRun(t, 0, "restore", "-r", repoDir, sn[0], "--target", out)
	return out
}
