//go:build unix

package check_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/local"
	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

const killBlobs = 400

// killBackup stores the same killBlobs blobs every time, then a tree and a
// snapshot, and returns how many blobs it added.
func killBackup(ctx context.Context, r *repo.Repository, seed uint64) (int, error) {
	added := 0
	var content []repo.Chunk
	for i := range killBlobs {
		d := data(seed*killBlobs+uint64(i), 20000)
		id := r.BlobID(d)
		a, _, err := r.SaveBlob(ctx, repo.DataBlob, id, d)
		if err != nil {
			return added, err
		}
		if a {
			added++
		}
		content = append(content, repo.Chunk{ID: &id, Len: 20000})
	}
	root, err := r.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{{Name: "f", Type: repo.NodeFile, Size: killBlobs * 20000, Content: content}}})
	if err != nil {
		return added, err
	}
	if err := r.Flush(ctx); err != nil {
		return added, err
	}
	_, err = r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Tree: &root, Hostname: "h"})
	return added, err
}

// TestKill9DuringBackup kills a process repeatedly in the middle of a
// backup into a local repository. After every kill, check must pass and a
// complete backup must not store again what the killed one indexed.
func TestKill9DuringBackup(t *testing.T) {
	ctx := context.Background()
	if dir := os.Getenv("BUNKER_KILL_HELPER"); dir != "" {
		repo.PackSize = 64 << 10 // about 3 blobs per pack: an index file every ~24 blobs
		seed, _ := strconv.ParseUint(os.Getenv("BUNKER_KILL_SEED"), 10, 64)
		r, err := repo.Open(ctx, local.New(dir), repotest.Password)
		if err != nil {
			os.Exit(3)
		}
		_ = os.WriteFile(filepath.Join(dir, "..", "started"), nil, 0o600)
		if _, err := killBackup(ctx, r, seed); err != nil {
			os.Exit(4)
		}
		time.Sleep(time.Minute) // wait to be killed
		os.Exit(0)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "repo")
	r := repotest.NewOn(t, local.New(dir))
	before := 0
	delays := []time.Duration{20, 100, 200, 400, 700}
	for round, delay := range delays {
		seed := uint64(round + 1)
		_ = os.Remove(filepath.Join(parent, "started"))
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9DuringBackup$")
		cmd.Env = append(os.Environ(), "BUNKER_KILL_HELPER="+dir, "BUNKER_KILL_SEED="+strconv.FormatUint(seed, 10))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join(parent, "started")); err == nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(delay * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		r2, err := repo.Open(ctx, local.New(dir), repotest.Password)
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		res := mustCheck(t, r2, check.Options{ReadData: true})
		if !res.OK() {
			t.Fatalf("round %d: check after kill: %v", round, res.Problems)
		}
		known := r2.BlobCount(repo.DataBlob) - before
		old := repo.PackSize
		repo.PackSize = 64 << 10
		added, err := killBackup(ctx, r2, seed)
		repo.PackSize = old
		if err != nil {
			t.Fatalf("round %d: backup after kill: %v", round, err)
		}
		if added != killBlobs-known {
			t.Fatalf("round %d: backup added %d blobs; %d were indexed, want %d added", round, added, known, killBlobs-known)
		}
		t.Logf("round %d: killed after %d ms: %d of %d blobs were indexed, %d added after", round, delay, known, killBlobs, added)
		before += killBlobs
	}
	res := mustCheck(t, repotest.Reopen(t, r), check.Options{ReadData: true})
	if !res.OK() {
		t.Fatalf("final check: %v", res.Problems)
	}
}
