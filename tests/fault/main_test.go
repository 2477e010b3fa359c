package fault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/local"
)

// password protects every repository of the suite.
const password = "fault suite: correct horse battery staple"

// bunkerBin is the binary built by TestMain.
var bunkerBin string

// TestMain builds the real bunker binary (static, as released) once, or
// uses the one named by BUNKER_FAULT_BIN.
func TestMain(m *testing.M) {
	// Key files this process adds (AddKey) get cheap KDF parameters too.
	repo.TestUseLowSecurityKDFParameters()
	if dir := os.Getenv("FAULT_HOLD_LOCK"); dir != "" {
		lockHolder(dir, os.Getenv("FAULT_HOLD_LOCK_MARKER"))
	}
	dir, err := os.MkdirTemp("", "bunker-fault-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by everyone: one test runs the binary as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bunkerBin = filepath.Join(dir, "bunker")
	if bin := os.Getenv("BUNKER_FAULT_BIN"); bin != "" {
		// A binary built elsewhere, such as a release build.
		bunkerBin = bin
	} else {
		build := exec.Command("go", "build", "-o", bunkerBin, "github.com/bunkerbackup/bunker/cmd/bunker")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build bunker:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is the outcome of one bunker run.
type result struct {
	args           []string
	code           int    // 128+N when killed by signal N
	signal         string // the signal that killed it, "" if it exited
	stdout, stderr string
}

func (r result) String() string {
	how := fmt.Sprintf("exit %d", r.code)
	if r.signal != "" {
		how = "killed by " + r.signal
	}
	return fmt.Sprintf("bunker %s: %s\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), how, r.stdout, r.stderr)
}

// env is the environment of every bunker process: no terminal, no config
// file of the machine, the suite's password.
func env(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		// The run history goes to the test's home, never to the machine's
		// (/var/lib/bunker for root).
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"TZ=UTC",
		"TERM=dumb",
		"BUNKER_PASSWORD=" + password,
	}
}

// proc is a running bunker process.
type proc struct {
	args           []string
	began          time.Time
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
	done           chan error
}

// start starts bunker.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := newProc(t, args...)
	p.begin(t)
	return p
}

// newProc prepares a bunker process; begin starts it.
func newProc(t *testing.T, args ...string) *proc {
	p := &proc{args: args, cmd: exec.Command(bunkerBin, args...), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), done: make(chan error, 1)}
	p.cmd.Env = env(t.TempDir())
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	return p
}

func (p *proc) begin(t *testing.T) {
	t.Helper()
	p.began = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
}

// signalAfter sends sig after d unless the process ends first; it reports
// whether the signal was sent.
func (p *proc) signalAfter(d time.Duration, sig os.Signal) bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	case <-time.After(d):
		p.cmd.Process.Signal(sig)
		return true
	}
}

// signalWhen polls cond every few milliseconds while the process runs and
// sends sig once it holds; it reports whether the signal was sent.
func (p *proc) signalWhen(cond func() bool, sig os.Signal) bool {
	for {
		select {
		case err := <-p.done:
			p.done <- err
			return false
		case <-time.After(2 * time.Millisecond):
			if cond() {
				p.cmd.Process.Signal(sig)
				return true
			}
		}
	}
}

// wait waits for the process (killing it after a minute) and checks that it
// did not panic.
func (p *proc) wait(t *testing.T) result {
	t.Helper()
	var err error
	select {
	case err = <-p.done:
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("bunker %s: still running after a minute\n%s", strings.Join(p.args, " "), p.stderr)
	}
	res := result{args: p.args, stdout: p.stdout.String(), stderr: p.stderr.String()}
	if d := time.Since(p.began); d > 500*time.Millisecond {
		t.Logf("bunker %s took %v", strings.Join(p.args, " "), d.Round(time.Millisecond))
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.code = 128 + int(ws.Signal())
			res.signal = ws.Signal().String()
		}
	default:
		t.Fatalf("run bunker: %v", err)
	}
	if strings.Contains(res.stderr, "panic:") || strings.Contains(res.stderr, "goroutine ") {
		t.Errorf("bunker panicked:\n%s", res)
	}
	return res
}

// run runs bunker to completion.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return start(t, args...).wait(t)
}

// mustRun runs bunker and fails the test unless it exits with code.
func mustRun(t *testing.T, code int, args ...string) result {
	t.Helper()
	res := run(t, args...)
	if res.code != code {
		t.Fatalf("want exit status %d, got:\n%s", code, res)
	}
	return res
}

// wantStderr fails unless stderr matches every pattern.
func wantStderr(t *testing.T, res result, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(res.stderr) {
			t.Errorf("stderr does not match %q:\n%s", p, res)
		}
	}
}

// initRepo creates a repository in dir through the library with cheap KDF
// parameters (the key file records them, so the binary opens it quickly).
func initRepo(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	r, err := repo.Init(ctx, local.New(dir), password, repo.InitOptions{KDF: repo.KDFParams{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		t.Fatalf("init repository: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// openRepo opens the repository in dir through the library.
func openRepo(t *testing.T, dir string) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), local.New(dir), password)
	if err != nil {
		t.Fatalf("open repository: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// summary is the --json summary line of a backup.
type summary struct {
	MessageType         string `json:"message_type"`
	SnapshotID          string `json:"snapshot_id"`
	DataAdded           int64  `json:"data_added"`
	DataAddedPacked     int64  `json:"data_added_packed"`
	TotalBytesProcessed int64  `json:"total_bytes_processed"`
	Incomplete          bool   `json:"incomplete"`
}

// backup runs "bunker backup --json ARGS" and returns its summary.
func backup(t *testing.T, code int, repoDir string, args ...string) (summary, result) {
	t.Helper()
	res := mustRun(t, code, append([]string{"backup", "-r", repoDir, "--json"}, args...)...)
	return parseSummary(t, res), res
}

func parseSummary(t *testing.T, res result) summary {
	t.Helper()
	for _, line := range strings.Split(res.stdout, "\n") {
		var s summary
		if json.Unmarshal([]byte(line), &s) == nil && s.MessageType == "summary" {
			return s
		}
	}
	t.Fatalf("no summary line:\n%s", res)
	return summary{}
}

// checkRepo runs "bunker check --read-data" and fails unless it passes.
func checkRepo(t *testing.T, repoDir string) {
	t.Helper()
	mustRun(t, 0, "check", "-r", repoDir, "--read-data")
}

// snapshotFiles returns the names of the snapshot files of a repository.
func snapshotFiles(t *testing.T, repoDir string) []string {
	t.Helper()
	return listFiles(t, filepath.Join(repoDir, "snapshots"))
}

// listFiles returns the names of the regular files under dir (relative,
// sorted); a missing dir has none.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// dirSize is the total size of the regular files under dir. Files that
// vanish while it looks (a running backup renames its temporary files) do
// not count.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range listFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// restoreAndCompare restores snapshot snap and compares the restored copy of
// src with src byte for byte.
func restoreAndCompare(t *testing.T, repoDir, snap, src string) {
	t.Helper()
	out := t.TempDir()
	mustRun(t, 0, "restore", "-r", repoDir, snap, "--target", out)
	compareTrees(t, src, filepath.Join(out, src), nil)
}

// compareTrees fails unless got holds the same files, directories and file
// contents as want; names in skip (relative to want) are not compared.
func compareTrees(t *testing.T, want, got string, skip map[string]bool) {
	t.Helper()
	wantFiles, gotFiles := listFiles(t, want), listFiles(t, got)
	wantFiles = slices.DeleteFunc(wantFiles, func(s string) bool { return skip[s] })
	gotFiles = slices.DeleteFunc(gotFiles, func(s string) bool { return skip[s] })
	if !slices.Equal(wantFiles, gotFiles) {
		t.Fatalf("restored %s holds %d files, want %d (%s)", got, len(gotFiles), len(wantFiles), want)
	}
	for _, name := range wantFiles {
		a, err := os.ReadFile(filepath.Join(want, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(got, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("restored %s differs from the original", filepath.Join(got, name))
		}
	}
}

// treeSpec describes a generated tree: large files of pseudo-random
// (incompressible) content with a few zero runs, and small files.
type treeSpec struct {
	seed       uint64
	large      int
	largeSize  int
	small      int
	smallSize  int
	dirsPerLvl int
}

// genTree writes a deterministic tree to dir and returns the bytes of data
// written (not counting zero runs).
func genTree(t *testing.T, dir string, s treeSpec) int64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(s.seed, s.seed^0x9e3779b97f4a7c15))
	src := rand.NewChaCha8(seed32(s.seed))
	var total int64
	write := func(name string, size int) {
		buf := make([]byte, size)
		src.Read(buf)
		if size > 1<<20 {
			// A zero run: stored as a hole.
			off := rng.IntN(size - 64<<10)
			clear(buf[off : off+64<<10])
			total -= 64 << 10
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(size)
	}
	dirs := max(s.dirsPerLvl, 1)
	for i := range s.large {
		write(fmt.Sprintf("d%02d/large-%03d.bin", i%dirs, i), s.largeSize)
	}
	for i := range s.small {
		write(fmt.Sprintf("d%02d/sub%02d/small-%05d.dat", i%dirs, (i/dirs)%dirs, i), 1+rng.IntN(max(s.smallSize, 1)))
	}
	return total
}

func seed32(seed uint64) [32]byte {
	var b [32]byte
	for i := range 4 {
		v := seed + uint64(i)*0x9e3779b97f4a7c15
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// needRoot skips a test that needs root, except in CI where it fails.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s needs root, and CI is set", why)
	}
	t.Skipf("%s needs root", why)
}

// needTool skips a test when a tool is missing, except in CI.
func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required when CI is set: %v", tool, err)
		}
		t.Skipf("%s not installed", tool)
	}
}

// expectations collects named assertions; each failed one fails the test
// with its name, so a regression of an earlier bug is recognised at once.
type expectations struct {
	t *testing.T
}

func newExpectations(t *testing.T) *expectations { return &expectations{t: t} }

// check fails the test unless ok.
func (k *expectations) check(ok bool, name, format string, args ...any) {
	k.t.Helper()
	if !ok {
		k.t.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
}

// done exists so callers can defer it; failures are reported by check.
func (k *expectations) done() {}
