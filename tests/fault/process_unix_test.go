//go:build unix

package fault_test

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
)

// TestUnreadableSources backs up a tree holding a file and a directory that
// cannot be read. As root (who reads everything) bunker runs as the
// unprivileged uid 65534 over a tree it owns.
func TestUnreadableSources(t *testing.T) {
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	src := filepath.Join(base, "src")
	genTree(t, src, treeSpec{seed: 41, large: 2, largeSize: 1 << 20, small: 30, smallSize: 4 << 10, dirsPerLvl: 2})
	secretFile := filepath.Join(src, "d00", "secret.bin")
	secretDir := filepath.Join(src, "d01", "private")
	if err := os.WriteFile(secretFile, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(secretDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secretDir, "inside"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		for _, dir := range []string{filepath.Dir(base), base} {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		err := filepath.Walk(base, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 65534, 65534)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(secretFile, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secretDir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(secretDir, 0o755) })

	p := startAs(t, cred, home, "backup", "-r", repoDir, src)
	res := p.wait(t)
	t.Logf("%s", res)
	if res.code != 3 {
		t.Fatalf("want exit status 3:\n%s", res)
	}
	wantStderr(t, res,
		`(?m)^bunker: warning: .*`+regexp.QuoteMeta(secretFile)+`.*permission denied`,
		`(?m)^bunker: warning: .*`+regexp.QuoteMeta(secretDir)+`.*permission denied`,
		`(?m)^bunker: error: snapshot [0-9a-f]{8} saved, but 2 sources could not be read$`)
	// Everything else is in the snapshot.
	out := restoreIncomplete(t, repoDir)
	os.Chmod(secretDir, 0o755)
	os.Chmod(filepath.Join(out, secretDir), 0o755) // restored with the mode it has
	compareTrees(t, src, filepath.Join(out, src), map[string]bool{"d00/secret.bin": true, "d01/private/inside": true})
}

// startAs starts bunker as the user cred (nil: this user) with HOME home.
func startAs(t *testing.T, cred *syscall.Credential, home string, args ...string) *proc {
	t.Helper()
	p := newProc(t, args...)
	p.cmd.Env = env(home)
	if cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	p.begin(t)
	return p
}
