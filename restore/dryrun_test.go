//go:build linux

package restore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
)

// TestFilesDryRun checks that a dry run writes nothing and counts what a
// real restore restores, and what the overwrite mode would skip.
func TestFilesDryRun(t *testing.T) {
	s := newFakeRepo()
	src := makeTree(t)
	sn := snapshotDir(t, s, src, 64<<10)
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "target")

	opts := restoreOpts(s)
	opts.DryRun = true
	var paths []string
	opts.OnItem = func(p string, n *repo.Node, skip bool) {
		paths = append(paths, p)
		if skip {
			t.Errorf("%s skipped in a fresh target", p)
		}
	}
	plan, err := Files(ctx, s, sn, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Fatalf("dry run created the target: %v", err)
	}
	real, err := Files(ctx, s, sn, dst, restoreOpts(s))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Files != real.Files || plan.Dirs != real.Dirs || plan.Symlinks != real.Symlinks ||
		plan.Hardlinks != real.Hardlinks || plan.Bytes != real.Bytes {
		t.Errorf("dry run %+v, restore %+v", plan, real)
	}
	if want := plan.Files + plan.Dirs + plan.Symlinks + plan.Hardlinks + plan.Special; uint64(len(paths)) != want {
		t.Errorf("%d items listed, %d counted", len(paths), want)
	}

	// Over the restored tree with --overwrite never everything but the
	// directories would be skipped; one changed file is found by
	// if-changed, and the dry run does not touch it.
	opts.OnItem = nil
	opts.Overwrite = OverwriteNever
	plan, err = Files(ctx, s, sn, dst, opts)
	if err != nil || plan.Files != 0 || plan.Skipped == 0 || plan.Dirs != real.Dirs {
		t.Errorf("never: %+v, %v", plan, err)
	}
	changed := filepath.Join(dst, "a", "b", "deep.txt")
	if err := os.WriteFile(changed, []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Overwrite = OverwriteIfChanged
	plan, err = Files(ctx, s, sn, dst, opts)
	if err != nil || plan.Files != 1 || plan.Bytes != 5 {
		t.Errorf("if-changed: %+v, %v", plan, err)
	}
	if b, _ := os.ReadFile(changed); string(b) != "changed\n" {
		t.Errorf("dry run wrote %q", b)
	}
}
