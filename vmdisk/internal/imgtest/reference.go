package imgtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fixtureScript is the reference fixture builder, relative to the module
// root.
const fixtureScript = "../shared/reference/make-fixtures.sh"

// ReferenceFixtures returns the directory of the disks make-fixtures.sh
// builds. BUNKER_FIXTURES names a directory built before; otherwise the
// script (at ../shared/reference/make-fixtures.sh next to the module root)
// builds them into a temporary directory, which takes a few seconds. The
// test skips when neither is there, and fails when CI is set.
func ReferenceFixtures(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("BUNKER_FIXTURES"); dir != "" {
		return dir
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, filepath.FromSlash(fixtureScript))
	if _, err := os.Stat(script); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no reference fixtures: set BUNKER_FIXTURES, or provide %s (%v)", script, err)
		}
		t.Fatalf("reference fixtures are required under CI: %v", err)
	}
	NeedAll(t, "bash", "openssl", "mkfs.fat", "mcopy", "mkfs.ext4", "sfdisk", "qemu-img", "qemu-io")
	dir := filepath.Join(t.TempDir(), "fixtures")
	cmd := exec.Command("bash", script, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return dir
}

// moduleRoot returns the directory holding go.mod, looking upwards from the
// working directory (a test's package directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
