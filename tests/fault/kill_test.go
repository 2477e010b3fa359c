package fault_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killRounds is how many times a backup is killed in each kill test.
const killRounds = 10

// killLoop starts the backup args killRounds times and kills it with
// SIGKILL at a pseudo-random moment (fixed seed): in every third round a
// random time up to 300ms after the start (opening, locking, walking), in
// the others when a random share of total bytes has been written to data/
// (packs, complete or being written), so the moments spread over the whole
// backup whatever the speed of the machine. After every kill a stale lock
// must be detected (it blocks nobody, and unlock removes it) and check must
// pass. It returns the most data one killed run left in data/ and whether a
// run finished before it was killed.
func killLoop(t *testing.T, repoDir string, seed uint64, total int64, args ...string) (maxRun int64, finished bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	dataDir := filepath.Join(repoDir, "data")
	for i := range killRounds {
		before := dirSize(t, dataDir)
		var when string
		var cond func() bool
		if i%3 == 0 {
			delay := 20*time.Millisecond + time.Duration(rng.Int64N(int64(280*time.Millisecond)))
			deadline := time.Now().Add(delay)
			when = fmt.Sprintf("after %v", delay)
			cond = func() bool { return time.Now().After(deadline) }
		} else {
			threshold := rng.Int64N(total * 9 / 10)
			when = fmt.Sprintf("at %d bytes written", threshold)
			cond = func() bool { return dirSize(t, dataDir)-before >= threshold }
		}
		p := start(t, append([]string{"backup", "-r", repoDir, "--json"}, args...)...)
		killed := p.signalWhen(cond, syscall.SIGKILL)
		res := p.wait(t)
		grown := dirSize(t, dataDir) - before
		maxRun = max(maxRun, grown)
		t.Logf("round %d: killed %s: exit %d, %d bytes added to data/", i, when, res.code, grown)
		if !killed || res.code == 0 {
			if res.code != 0 {
				t.Fatalf("backup ended before the kill:\n%s", res)
			}
			t.Logf("round %d: the backup finished before it was killed; no more kills", i)
			return maxRun, true
		}
		if res.code != 128+int(syscall.SIGKILL) {
			t.Fatalf("round %d: want death by SIGKILL:\n%s", i, res)
		}

		// The dead process's lock is stale: it blocks nobody, and unlock
		// removes exactly it.
		// A lock file still being written when the kill came is a
		// temporary file: no lock, and unlock leaves it to prune.
		locks := lockFiles(t, repoDir)
		mustRun(t, 0, "snapshots", "-r", repoDir)
		un := mustRun(t, 0, "unlock", "-r", repoDir, "--json")
		if want := regexp.MustCompile(`"removed_locks":\s*` + strconv.Itoa(len(locks)) + `\b`); !want.MatchString(un.stdout) {
			t.Fatalf("round %d: %d lock file(s) of the killed process, unlock says:\n%s", i, len(locks), un)
		}
		if left := lockFiles(t, repoDir); len(left) > 0 {
			t.Fatalf("round %d: unlock left %v", i, left)
		}
		mustRun(t, 0, "check", "-r", repoDir)
	}
	var tmp int
	for _, name := range listFiles(t, repoDir) {
		if strings.HasPrefix(filepath.Base(name), ".tmp-") {
			tmp++
		}
	}
	t.Logf("after %d kills: %d temporary file(s) of unfinished writes left in the repository", killRounds, tmp)
	return maxRun, false
}

// lockFiles lists the lock files of the repository at repoDir, without
// temporary files of unfinished writes.
func lockFiles(t *testing.T, repoDir string) []string {
	t.Helper()
	var locks []string
	for _, name := range listFiles(t, filepath.Join(repoDir, "locks")) {
		if !strings.HasPrefix(filepath.Base(name), ".tmp-") {
			locks = append(locks, name)
		}
	}
	return locks
}

// assertLittleReuploaded checks that the backup after the kills stored
// clearly less than all total bytes of data, when a killed run got far enough to have
// stored a good part of the data.
func assertLittleReuploaded(t *testing.T, bugs *expectations, s summary, total, maxRun int64, finished bool) {
	t.Helper()
	t.Logf("final backup: %d of %d bytes added; the furthest killed run had stored %d bytes", s.DataAdded, total, maxRun)
	if finished || maxRun < total/4 {
		return
	}
	bugs.check(s.DataAdded <= total-maxRun/2, "reupload-after-kill",
		"the backup after %d killed runs added %d of %d bytes although one killed run had already stored %d bytes: "+
			"packs without an index file (left by the killed runs) are not reused; the backup command does not call repo.IndexOrphanPacks",
		killRounds, s.DataAdded, total, maxRun)
}

// TestKillFileBackup kills a file backup at random moments, repeatedly.
func TestKillFileBackup(t *testing.T) {
	bugs := newExpectations(t)
	defer bugs.done()
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)

	early := filepath.Join(base, "early")
	genTree(t, early, treeSpec{seed: 1, large: 2, largeSize: 2 << 20, small: 50, smallSize: 8 << 10, dirsPerLvl: 3})
	first, _ := backup(t, 0, repoDir, early)

	src := filepath.Join(base, "src")
	total := genTree(t, src, treeSpec{seed: 2, large: 12, largeSize: 6 << 20, small: 1000, smallSize: 4 << 10, dirsPerLvl: 6})
	maxRun, finished := killLoop(t, repoDir, 20261122, total, src)

	final, _ := backup(t, 0, repoDir, src)
	assertLittleReuploaded(t, bugs, final, total, maxRun, finished)
	checkRepo(t, repoDir)
	restoreAndCompare(t, repoDir, first.SnapshotID, early)
	restoreAndCompare(t, repoDir, final.SnapshotID, src)
}

// TestKillDiskBackup kills a disk backup at random moments, repeatedly.
func TestKillDiskBackup(t *testing.T) {
	bugs := newExpectations(t)
	defer bugs.done()
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)

	early := filepath.Join(base, "early.raw")
	writeDisk(t, early, 7, 16<<20)
	first, _ := backup(t, 0, repoDir, "--disk", early, "--name", "early")

	img := filepath.Join(base, "vm.raw")
	total := writeDisk(t, img, 8, 96<<20)
	maxRun, finished := killLoop(t, repoDir, 20261123, total, "--disk", img, "--name", "vm")

	final, _ := backup(t, 0, repoDir, "--disk", img, "--name", "vm")
	assertLittleReuploaded(t, bugs, final, total, maxRun, finished)
	checkRepo(t, repoDir)
	restoreDiskAndCompare(t, repoDir, first.SnapshotID, "early", early)
	restoreDiskAndCompare(t, repoDir, final.SnapshotID, "vm", img)
}

// writeDisk writes a raw disk image of size bytes: pseudo-random data in
// 1 MiB extents, every fourth extent left as a hole. It returns the bytes of
// data written.
func writeDisk(t *testing.T, path string, seed uint64, size int64) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	src := rand.NewChaCha8(seed32(seed))
	buf := make([]byte, 1<<20)
	var data int64
	for off := int64(0); off+int64(len(buf)) <= size; off += int64(len(buf)) {
		if (off>>20)%4 == 3 {
			continue
		}
		src.Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
		data += int64(len(buf))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

// restoreDiskAndCompare restores disk name of snapshot snap to a raw image
// and compares it with the original image byte for byte.
func restoreDiskAndCompare(t *testing.T, repoDir, snap, name, want string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".raw")
	mustRun(t, 0, "restore", "-r", repoDir, snap, "--disk", name, "--to", out)
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("restored disk %s of snapshot %s differs from %s", name, snap, want)
	}
}
