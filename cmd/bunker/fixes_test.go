package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

// runCLI runs one bunker invocation in this process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestReadOnlyRepositoryFallback: when the lock cannot be written (a
// read-only mount, no permission), the commands that only read run without
// a lock and warn; the commands that write fail with a hint that fits.
func TestReadOnlyRepositoryFallback(t *testing.T) {
	t.Setenv("BUNKER_PASSWORD", "pw")
	t.Setenv("BUNKER_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "init", "-r", repoDir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "backup", "-r", repoDir, "-q", src); code != 0 {
		t.Fatalf("backup: %d %s", code, stderr)
	}
	for _, errno := range []syscall.Errno{syscall.EROFS, syscall.EACCES} {
		wrapBackend = func(be backend.Backend) backend.Backend {
			f := faulty.New(be)
			f.Add(faulty.Rule{Method: faulty.Save, Type: backend.LockFile,
				Err: &fs.PathError{Op: "open", Path: filepath.Join(repoDir, "locks", "tmp"), Err: errno}})
			return f
		}
		code, stdout, stderr := runCLI(t, "snapshots", "-r", repoDir)
		if code != 0 || !strings.Contains(stdout, "1 snapshot") || !strings.Contains(stderr, "bunker: warning: cannot write a lock in ") {
			t.Errorf("%v: snapshots: exit %d\n%s%s", errno, code, stdout, stderr)
		}
		code, stdout, stderr = runCLI(t, "dump", "-r", repoDir, "latest", filepath.Join(src, "f"))
		if code != 0 || stdout != "data\n" {
			t.Errorf("%v: dump: exit %d\n%s%s", errno, code, stdout, stderr)
		}
		code, _, stderr = runCLI(t, "backup", "-r", repoDir, src)
		if code != 1 || strings.Contains(stderr, "without one") {
			t.Errorf("%v: backup: exit %d\n%s", errno, code, stderr)
		}
		if errno == syscall.EROFS && !strings.Contains(stderr, "hint: the repository's file system is mounted read-only: remount it read-write; commands that only read") {
			t.Errorf("backup on a read-only repository: hint: %s", stderr)
		}
	}
	wrapBackend = nil
}

// TestHintsByContext: the advice fits the command and where the failing
// path lies.
func TestHintsByContext(t *testing.T) {
	repoDir := t.TempDir()
	for _, tc := range []struct {
		cmd  string
		err  error
		want string
		not  string
	}{
		{"restore", fmt.Errorf("open /dev/loop0: %w (%w)", raw.ErrDeviceBusy, vmdisk.ErrInUse), "unmount it", "--force"},
		{"backup", fmt.Errorf("open x: %w", vmdisk.ErrInUse), "add --force", "unmount"},
		{"restore", &fs.PathError{Op: "open", Path: "/dev/sdz", Err: syscall.EBUSY}, "unmount it", "--force"},
		{"dump", fmt.Errorf("dump: %w", &fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}), "the output is full", "repository"},
		{"dump", fmt.Errorf("dump: %w", syscall.ENOSPC), "the output is full", "repository"},
		{"restore", &fs.PathError{Op: "write", Path: "/mnt/target/x", Err: syscall.ENOSPC}, "free space on the file system of the target", "repository"},
		{"restore", fmt.Errorf("write: %w", syscall.ENOSPC), "free space on the file system of the target", "repository"},
		{"backup", &fs.PathError{Op: "write", Path: filepath.Join(repoDir, "data", "ab", "x"), Err: syscall.ENOSPC}, "free space where the repository lives", "target"},
		{"restore", &fs.PathError{Op: "open", Path: "/mnt/ro/x", Err: syscall.EROFS}, "the target is on a read-only file system", "repository"},
		{"backup", &fs.PathError{Op: "open", Path: filepath.Join(repoDir, "locks", "x"), Err: syscall.EROFS}, "--no-lock", "target"},
	} {
		g := &globalOptions{Repo: repoDir, command: &cobra.Command{Use: tc.cmd}}
		h := strings.Join(g.hints(tc.err), "\n")
		if !strings.Contains(h, tc.want) || strings.Contains(h, tc.not) {
			t.Errorf("%s: %v: hints %q, want %q and not %q", tc.cmd, tc.err, h, tc.want, tc.not)
		}
	}
}

// TestJSONExitErrorOnly: with --json a fatal error prints one JSON line on
// stderr and nothing else.
func TestJSONExitErrorOnly(t *testing.T) {
	t.Setenv("BUNKER_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code, stdout, stderr := runCLI(t, "snapshots", "--json", "-r", filepath.Join(t.TempDir(), "nowhere"))
	if code != exitNoRepo || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `{"message_type":"exit_error","code":10,`) || !strings.Contains(lines[0], `"hints":["check --repo`) {
		t.Fatalf("stderr: %q", stderr)
	}
}

// TestPasswordLevels: the source set at the highest level wins, whatever
// its kind; two at the same level are a usage error.
func TestPasswordLevels(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		flags  []string
		config string
		want   string
		usage  bool
	}{
		{"flag command beats env file", map[string]string{"BUNKER_PASSWORD_FILE": "/nonexistent"}, []string{"--password-command", "echo from-cmd"}, "", "from-cmd", false},
		{"env command beats config file", map[string]string{"BUNKER_PASSWORD_COMMAND": "echo from-cmd"}, nil, "password-file: /nonexistent\n", "from-cmd", false},
		{"env password beats config command", map[string]string{"BUNKER_PASSWORD": "from-env"}, nil, "password-command: echo x\n", "from-env", false},
		{"env file beats env password", map[string]string{"BUNKER_PASSWORD": "from-env", "BUNKER_PASSWORD_FILE": pw}, nil, "", "from-file", false},
		{"flag file beats env password", map[string]string{"BUNKER_PASSWORD": "from-env"}, []string{"--password-file", pw}, "", "from-file", false},
		{"two flags", nil, []string{"--password-file", pw, "--password-command", "echo x"}, "", "", true},
		{"two env", map[string]string{"BUNKER_PASSWORD_FILE": pw, "BUNKER_PASSWORD_COMMAND": "echo x"}, nil, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"BUNKER_PASSWORD", "BUNKER_PASSWORD_FILE", "BUNKER_PASSWORD_COMMAND", "BUNKER_REPOSITORY", "BUNKER_CACHE_DIR"} {
				t.Setenv(k, tc.env[k])
			}
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(cfg, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("BUNKER_CONFIG", cfg)
			var stdout, stderr bytes.Buffer
			g := &globalOptions{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
			g.out = &printer{g: g}
			root := newRootCmd(g)
			var got string
			var perr error
			cmd := &cobra.Command{Use: "probe", RunE: func(*cobra.Command, []string) error {
				got, perr = g.readPassword("")
				return nil
			}}
			root.AddCommand(cmd)
			root.SetArgs(append([]string{"probe"}, tc.flags...))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if tc.usage {
				if exitCode(perr) != exitUsage {
					t.Fatalf("got %q, %v; want a usage error", got, perr)
				}
				return
			}
			if perr != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, perr, tc.want)
			}
		})
	}
}

// TestSnapshotFlags: the listing marks protected, incomplete,
// crash-consistent and changed-during-read snapshots, with a legend, and
// --json has the fields.
func TestSnapshotFlags(t *testing.T) {
	sn := &repo.Snapshot{Hostname: "h", Paths: []string{"vm1"}, Incomplete: true,
		Disks: []repo.Disk{{Name: "vm1", ChangedDuringRead: true}, {Name: "vm2", CrashConsistent: true}}}
	plain := &repo.Snapshot{ID: repo.ID{0xab}, Hostname: "h", Paths: []string{"/etc"}}
	until := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	prot := protectedSet{sn.ID: until}
	var b bytes.Buffer
	if err := printSnapshotTable(&b, []*repo.Snapshot{sn, plain}, prot, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"ID        Flags", "00000000  p!c~  ", "\nab000000        ", "\np  protected: 'bunker forget' does not remove it\n",
		"\n!  incomplete", "\nc  crash-consistent", "\n~  a disk changed while it was read"} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	j, err := json.Marshal(toSnapshotJSON(sn, prot))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"incomplete":true`, `"crash_consistent":true`, `"changed_during_read":true`,
		`"protected":true`, `"protected_until":"2027-01-31T00:00:00Z"`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("JSON lacks %s: %s", want, j)
		}
	}
	// Protected until unprotected: no end; not protected: false.
	j, _ = json.Marshal(toSnapshotJSON(sn, protectedSet{sn.ID: {}}))
	if !strings.Contains(string(j), `"protected":true`) || strings.Contains(string(j), "protected_until") {
		t.Errorf("protected without end: %s", j)
	}
	j, _ = json.Marshal(toSnapshotJSON(plain, prot))
	if !strings.Contains(string(j), `"protected":false`) || strings.Contains(string(j), "protected_until") {
		t.Errorf("not protected: %s", j)
	}
}

// TestDiskWarnings: a backup whose disk changed during the read or was read
// in use ends with a warning on stderr.
func TestDiskWarnings(t *testing.T) {
	var stdout, stderr bytes.Buffer
	g := &globalOptions{stdout: &stdout, stderr: &stderr}
	g.out = &printer{g: g}
	sn := &repo.Snapshot{Disks: []repo.Disk{{Name: "vm1", Source: "/img/vm1.raw", ChangedDuringRead: true}, {Name: "vm2", Source: "/img/vm2.vmdk", CrashConsistent: true}}}
	g.diskWarnings(sn, false)
	out := stderr.String()
	for _, want := range []string{
		"bunker: warning: /img/vm1.raw: disk vm1 changed while it was read: snapshot 00000000 may hold an inconsistent disk",
		"bunker: warning: /img/vm2.vmdk: disk vm2 was read while in use (--force): snapshot 00000000 is crash-consistent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q", stdout.String())
	}
}
