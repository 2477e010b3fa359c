package fault_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

// checkErrors runs check (exit 0 or 1) and returns its error lines.
func checkErrors(t *testing.T, repoDir string) []string {
	t.Helper()
	res := run(t, "check", "-r", repoDir)
	if res.code != 0 && res.code != 1 {
		t.Fatalf("check:\n%s", res)
	}
	var errs []string
	for _, line := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(line, "error: ") {
			errs = append(errs, line)
		}
	}
	return errs
}

// TestKillRepairIndex damages a repository (a flipped byte in a data blob,
// every index file lost), then kills `repair index --read-all-packs` at
// random moments, repeatedly. After every kill check reports no error it
// did not report before the repair, and in the end a complete repair, repair
// snapshots --forget and prune leave a repository that check --read-data
// accepts and whose repaired snapshot restores every intact file.
func TestKillRepairIndex(t *testing.T) {
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	src := filepath.Join(base, "src")
	genTree(t, src, treeSpec{seed: 71, large: 10, largeSize: 6 << 20, small: 300, smallSize: 8 << 10, dirsPerLvl: 4})
	backup(t, 0, repoDir, src)

	// A byte in the middle of a data blob of the largest pack.
	r := openRepo(t, repoDir)
	var victim repo.PackedBlob
	var biggest int64
	packs, err := r.ListPacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for id, size := range packs {
		if size > biggest {
			biggest = size
			blobs, err := r.LoadPackHeader(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			victim = blobs[len(blobs)/2]
		}
	}
	r.Close()
	flipBit(t, packPath(repoDir, victim.Pack), int64(victim.Offset)+int64(victim.Length)/2, 5)
	res := mustRun(t, 1, "check", "-r", repoDir, "--read-data", "--json")
	var doc checkJSON
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("check --json: %v\n%s", err, res)
	}
	skip := map[string]bool{}
	for _, u := range doc.Affected {
		rel, err := filepath.Rel(src, u.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("affected path %q is not in %s", u.Path, src)
		}
		skip[rel] = true
	}
	if len(skip) == 0 {
		t.Fatalf("check names no affected file:\n%s", res)
	}

	if err := os.RemoveAll(filepath.Join(repoDir, "index")); err != nil {
		t.Fatal(err)
	}
	before := checkErrors(t, repoDir)
	if len(before) == 0 {
		t.Fatal("check finds no error without an index")
	}

	// How long a whole run takes, without changing anything.
	began := time.Now()
	mustRun(t, 0, "repair", "index", "-r", repoDir, "--read-all-packs", "--dry-run")
	whole := time.Since(began) + 50*time.Millisecond
	rng := rand.New(rand.NewPCG(20261124, 20261124))
	for i := range 8 {
		// Up to twice the dry run: the real run also writes the new pack,
		// the index and removes the old files, some rounds finish.
		delay := time.Duration(rng.Int64N(2 * int64(whole)))
		p := start(t, "repair", "index", "-r", repoDir, "--read-all-packs")
		killed := p.signalAfter(delay, syscall.SIGKILL)
		res := p.wait(t)
		t.Logf("round %d: kill after %v: exit %d, %d index files, %d packs", i, delay, res.code,
			len(listFiles(t, filepath.Join(repoDir, "index"))), len(listFiles(t, filepath.Join(repoDir, "data"))))
		if !killed || res.code == 0 {
			if res.code != 0 {
				t.Fatalf("repair index failed:\n%s", res)
			}
			continue
		}
		mustRun(t, 0, "unlock", "-r", repoDir)
		for _, e := range checkErrors(t, repoDir) {
			// Once the new index is in force, the damaged blob it left out
			// shows: damage that was there before, now visible.
			if !slices.Contains(before, e) && !strings.Contains(e, "blob "+victim.ID.Str()+" ") {
				t.Errorf("round %d: after the kill check reports a new error: %s (before: %q)", i, e, before)
			}
		}
	}

	res = mustRun(t, 0, "repair", "index", "-r", repoDir, "--read-all-packs")
	if !strings.Contains(res.stdout, "damaged blob "+victim.ID.Str()) {
		t.Errorf("repair index does not name the damaged blob %s:\n%s", victim.ID.Str(), res)
	}
	if n := len(slices.DeleteFunc(listFiles(t, filepath.Join(repoDir, "index")), func(n string) bool { return strings.HasPrefix(n, ".tmp-") })); n != 1 {
		t.Errorf("%d index files after the repair, want 1", n)
	}
	mustRun(t, 0, "repair", "snapshots", "-r", repoDir, "--forget")
	mustRun(t, 0, "prune", "-r", repoDir)
	checkRepo(t, repoDir)
	out := t.TempDir()
	mustRun(t, 0, "restore", "-r", repoDir, "latest", "--target", out)
	compareTrees(t, src, filepath.Join(out, src), skip)
	for rel := range skip {
		if _, err := os.Lstat(filepath.Join(out, src, rel)); err == nil {
			t.Errorf("%s, damaged, is in the repaired snapshot", rel)
		}
	}
}
