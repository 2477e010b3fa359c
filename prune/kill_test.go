//go:build unix

package prune_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/prune"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/local"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

// TestKill9DuringPrune kills a prune process (SIGKILL) at several points of
// its run on a local repository. After every kill the repository must pass
// check (with read-data), and a new prune must finish the job.
func TestKill9DuringPrune(t *testing.T) {
	ctx := context.Background()
	if dir := os.Getenv("BUNKER_PRUNE_KILL_HELPER"); dir != "" {
		r, err := repo.Open(ctx, local.New(dir), repotest.Password)
		if err != nil {
			os.Exit(3)
		}
		plan, err := prune.NewPlan(ctx, r, prune.Options{MaxUnused: prune.DefaultMaxUnused})
		if err != nil {
			os.Exit(4)
		}
		_ = os.WriteFile(filepath.Join(dir, "..", "started"), nil, 0o600)
		if _, err := plan.Execute(ctx); err != nil {
			os.Exit(5)
		}
		_ = os.WriteFile(filepath.Join(dir, "..", "finished"), nil, 0o600)
		time.Sleep(time.Minute) // wait to be killed
		os.Exit(0)
	}
	base := filepath.Join(t.TempDir(), "repo")
	r := repotest.NewOn(t, local.New(base))
	forgetHalf(t, r, history(t, r, 24))

	finished := 0
	for round, delay := range []time.Duration{0, 2, 5, 10, 20, 40, 80} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "repo")
		if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9DuringPrune$")
		cmd.Env = append(os.Environ(), "BUNKER_PRUNE_KILL_HELPER="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, err := os.Stat(filepath.Join(parent, "started")); err == nil {
				break
			}
		}
		time.Sleep(delay * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if _, err := os.Stat(filepath.Join(parent, "finished")); err == nil {
			finished++
		}

		r2, err := repo.Open(ctx, local.New(dir), repotest.Password)
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		mustCheck(t, r2, false)
		if _, _, err := prune.Run(ctx, r2, prune.Options{MaxUnused: prune.DefaultMaxUnused}); err != nil {
			t.Fatalf("round %d: prune after kill: %v", round, err)
		}
		mustCheck(t, r2, true)
		sns, err := repotest.Reopen(t, r2).Snapshots(ctx)
		if err != nil || len(sns) != 12 {
			t.Fatalf("round %d: %d snapshots, %v", round, len(sns), err)
		}
	}
	if finished == 7 {
		t.Error("prune finished before every kill: the kills tested nothing")
	}
	t.Logf("%d of 7 runs finished before the kill", finished)
}
