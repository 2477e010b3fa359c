package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/bunkerbackup/bunker/internal/nobodytest"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/local"
)

// fixtureTime is the mtime of every file the fixture builders make.
var fixtureTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func scriptSetup(env *testscript.Env) error {
	env.Setenv("HOME", env.WorkDir)
	env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
	env.Setenv("XDG_CACHE_HOME", filepath.Join(env.WorkDir, ".cache"))
	env.Setenv("XDG_STATE_HOME", filepath.Join(env.WorkDir, ".state"))
	env.Setenv("TZ", "UTC")
	env.Setenv("TERM", "dumb")
	env.Setenv("BUNKER_PASSWORD", "correct horse battery staple")
	return nil
}

// scriptCondition adds [root] and [tool:NAME]. A missing tool is an error
// (failing the script) when CI is set: nothing skips silently in CI. Use it
// as "[!tool:qemu-img] skip".
func scriptCondition(cond string) (bool, error) {
	if tool, ok := strings.CutPrefix(cond, "tool:"); ok {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				return false, fmt.Errorf("%s is required when CI is set: %v", tool, err)
			}
			return false, nil
		}
		return true, nil
	}
	switch cond {
	case "root":
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"exitcode":    cmdExitcode,
	"mktree":      cmdMktree,
	"mkdisk":      cmdMkdisk,
	"cmpdir":      cmdCmpdir,
	"sparse":      cmdSparse,
	"jsonenv":     cmdJSONEnv,
	"holdlock":    cmdHoldlock,
	"releaselock": cmdReleaselock,
	"corrupt":     cmdCorrupt,
	"waitfile":    cmdWaitfile,
	"scribble":    cmdScribble,
}

// scribble FILE OFF LEN [SEED] overwrites LEN bytes of FILE at OFF with
// pseudo-random data, keeping the rest of the file.
func cmdScribble(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: scribble FILE OFF LEN [SEED]")
	}
	seed := uint64(99)
	if len(args) == 4 {
		n, err := strconv.ParseUint(args[3], 10, 64)
		ts.Check(err)
		seed = n
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDWR, 0)
	ts.Check(err)
	defer f.Close()
	_, err = f.WriteAt(pseudoRandom(seed, int(parseSize(ts, args[2]))), parseSize(ts, args[1]))
	ts.Check(err)
}

// lockHolder is the test command "bunker-lockholder REPO MARKER": it locks
// REPO exclusively, creates MARKER and waits to be killed, leaving a lock of
// a dead process behind (a stale lock).
func lockHolder() {
	ctx := context.Background()
	r, err := repo.Open(ctx, local.New(os.Args[1]), os.Getenv("BUNKER_PASSWORD"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := r.Lock(ctx, true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], nil, 0o644); err != nil {
		os.Exit(1)
	}
	select {}
}

// asNobody is the test command "asnobody PROG [ARGS...]". Run as root (who
// reads and writes any file) it makes the user nobody the owner of $WORK and
// runs PROG as nobody, so that a script can test permission errors as root
// too; run as another user it runs PROG as that user. Its exit status is
// PROG's.
func asNobody() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: asnobody PROG [ARGS...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if os.Geteuid() == 0 {
		if err := runAsNobody(cmd); err != nil {
			fmt.Fprintln(os.Stderr, "asnobody:", err)
			os.Exit(2)
		}
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "asnobody:", err)
		os.Exit(2)
	}
}

// runAsNobody gives $WORK to nobody and sets cmd to run as nobody. The test
// commands (bunker) live in a directory only root may enter: cmd runs a
// copy of them in $WORK/.asnobody instead.
func runAsNobody(cmd *exec.Cmd) error {
	work := os.Getenv("WORK")
	if work == "" {
		return errors.New("WORK is not set")
	}
	bin := filepath.Join(work, ".asnobody")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if filepath.Dir(cmd.Path) == filepath.Dir(self) {
		if cmd.Path, err = nobodytest.Executable(bin, filepath.Base(cmd.Path)); err != nil {
			return err
		}
	}
	if err := nobodytest.Searchable(work); err != nil {
		return err
	}
	if err := nobodytest.Chown(work, bin); err != nil {
		return err
	}
	cmd.SysProcAttr = nobodytest.SysProcAttr()
	return nil
}

// waitfile FILE waits up to 20 seconds for FILE to exist.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear within 20s", args[0])
}

// corrupt DIR flips one byte in the middle of the largest file below DIR
// (in a pack: the middle of a data blob).
func cmdCorrupt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: corrupt DIR")
	}
	var biggest string
	var size int64
	ts.Check(filepath.WalkDir(ts.MkAbs(args[0]), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return err
	}))
	if biggest == "" {
		ts.Fatalf("no file below %s", args[0])
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	ts.Check(err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, size/2)
	ts.Check(err)
	b[0] ^= 0x55
	_, err = f.WriteAt(b, size/2)
	ts.Check(err)
}

// exitcode N prog args... runs prog like exec and asserts its exit status.
// stdout and stderr are kept for the following stdout/stderr/cmp lines.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exec %s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// mktree DIR builds a file tree with every kind of entry bunker must keep:
// text, empty, executable, multi-chunk and sparse files, a symlink, a hard
// link, nested directories and names that are not UTF-8 or hold a newline.
// Every mtime is fixtureTime.
func cmdMktree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mktree DIR")
	}
	root := ts.MkAbs(args[0])
	must := func(err error) { ts.Check(err) }
	write := func(name string, data []byte, mode fs.FileMode) {
		p := filepath.Join(root, name)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	write("file.txt", []byte("hello bunker\n"), 0o644)
	write("empty", nil, 0o600)
	write("exec.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("sub/nested.txt", []byte("nested\n"), 0o644)
	write("sub/deeper/data.bin", pseudoRandom(1, 3<<20+12345), 0o644)
	write("bad\xffname", []byte("not utf-8\n"), 0o644)
	write("new\nline", []byte("newline in name\n"), 0o644)

	sp := filepath.Join(root, "sparse.img")
	f, err := os.Create(sp)
	must(err)
	must(f.Truncate(4 << 20))
	_, err = f.WriteAt([]byte("data in the middle of holes\n"), 1<<20)
	must(err)
	must(f.Close())

	must(os.Symlink("file.txt", filepath.Join(root, "link")))
	must(os.Link(filepath.Join(root, "file.txt"), filepath.Join(root, "hardlink")))
	setTimes(ts, root)
}

// setTimes sets the mtime of everything under root (depth first, so
// directories keep theirs) to fixtureTime, symlinks included.
func setTimes(ts *testscript.TestScript, root string) {
	var paths []string
	ts.Check(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		ts.Check(lchtimes(paths[i], fixtureTime))
	}
}

func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// mkdisk FILE SIZE [SEED] [OFF:LEN...] writes a sparse raw disk image of
// SIZE bytes (suffixes K, M, G) with pseudo-random data (SEED, default 1) in
// the given ranges; without ranges, the first and last MiB hold data.
func cmdMkdisk(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mkdisk FILE SIZE [seed=N] [OFF:LEN...]")
	}
	size := parseSize(ts, args[1])
	seed := uint64(1)
	var ranges [][2]int64
	for _, a := range args[2:] {
		if v, ok := strings.CutPrefix(a, "seed="); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			ts.Check(err)
			seed = n
			continue
		}
		off, ln, ok := strings.Cut(a, ":")
		if !ok {
			ts.Fatalf("bad range %q, want OFF:LEN", a)
		}
		ranges = append(ranges, [2]int64{parseSize(ts, off), parseSize(ts, ln)})
	}
	if len(ranges) == 0 {
		ranges = [][2]int64{{0, min(size, 1<<20)}, {max(0, size-1<<20), min(size, 1<<20)}}
	}
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Check(f.Truncate(size))
	for i, r := range ranges {
		if r[0]+r[1] > size {
			ts.Fatalf("range %d:%d beyond disk size %d", r[0], r[1], size)
		}
		_, err := f.WriteAt(pseudoRandom(seed+uint64(i)*7919, int(r[1])), r[0])
		ts.Check(err)
	}
	ts.Check(f.Close())
}

func parseSize(ts *testscript.TestScript, s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	ts.Check(err)
	return n * mult
}

// cmpdir [-nomtime] A B compares two trees: the same entries with the same
// type, permissions, content, link targets, mtimes and hard-link groups.
func cmpdir(a, b string, mtimes bool) []string {
	var diffs []string
	inodesA := map[uint64]string{}
	inodesB := map[uint64]string{}
	seen := map[string]bool{}
	filepath.WalkDir(a, func(pa string, d fs.DirEntry, err error) error {
		if err != nil {
			diffs = append(diffs, err.Error())
			return nil
		}
		rel, _ := filepath.Rel(a, pa)
		seen[rel] = true
		pb := filepath.Join(b, rel)
		ia, erra := os.Lstat(pa)
		ib, errb := os.Lstat(pb)
		if erra != nil || errb != nil {
			diffs = append(diffs, fmt.Sprintf("%q: %v %v", rel, erra, errb))
			return nil
		}
		if ia.Mode() != ib.Mode() {
			diffs = append(diffs, fmt.Sprintf("%q: mode %v != %v", rel, ia.Mode(), ib.Mode()))
			return nil
		}
		if mtimes && rel != "." && ia.Mode()&fs.ModeSymlink == 0 && !ia.ModTime().Equal(ib.ModTime()) {
			diffs = append(diffs, fmt.Sprintf("%q: mtime %v != %v", rel, ia.ModTime(), ib.ModTime()))
		}
		switch {
		case ia.Mode().IsRegular():
			ca, _ := os.ReadFile(pa)
			cb, _ := os.ReadFile(pb)
			if !bytes.Equal(ca, cb) {
				diffs = append(diffs, fmt.Sprintf("%q: content differs (%d and %d bytes)", rel, len(ca), len(cb)))
			}
			inoA, nlink := inode(ia)
			inoB, _ := inode(ib)
			if nlink > 1 {
				if first, ok := inodesA[inoA]; ok {
					if inodesB[inoB] != first {
						diffs = append(diffs, fmt.Sprintf("%q: not a hard link to %q", rel, first))
					}
				} else {
					inodesA[inoA], inodesB[inoB] = rel, rel
				}
			}
		case ia.Mode()&fs.ModeSymlink != 0:
			ta, _ := os.Readlink(pa)
			tb, _ := os.Readlink(pb)
			if ta != tb {
				diffs = append(diffs, fmt.Sprintf("%q: link target %q != %q", rel, ta, tb))
			}
		}
		return nil
	})
	filepath.WalkDir(b, func(pb string, d fs.DirEntry, err error) error {
		if err == nil {
			if rel, _ := filepath.Rel(b, pb); !seen[rel] {
				diffs = append(diffs, fmt.Sprintf("%q: only in %s", rel, b))
			}
		}
		return nil
	})
	sort.Strings(diffs)
	return diffs
}

func cmdCmpdir(ts *testscript.TestScript, neg bool, args []string) {
	mtimes := true
	if len(args) > 0 && args[0] == "-nomtime" {
		mtimes, args = false, args[1:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: cmpdir [-nomtime] DIR1 DIR2")
	}
	diffs := cmpdir(ts.MkAbs(args[0]), ts.MkAbs(args[1]), mtimes)
	switch {
	case neg && len(diffs) == 0:
		ts.Fatalf("%s and %s are the same", args[0], args[1])
	case !neg && len(diffs) > 0:
		ts.Fatalf("%s and %s differ:\n%s", args[0], args[1], strings.Join(diffs, "\n"))
	}
}

// sparse FILE asserts that FILE occupies less disk space than its size.
func cmdSparse(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: sparse FILE")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	alloc := allocated(fi)
	isSparse := alloc < fi.Size()
	if isSparse == neg {
		ts.Fatalf("%s: size %d, allocated %d bytes: sparse=%v", args[0], fi.Size(), alloc, isSparse)
	}
}

// jsonenv VAR FIELD [KEY=VALUE] sets VAR to the last string or number
// value of FIELD found (at any depth) in the JSON values of the last
// command's stdout; with KEY=VALUE only in objects whose KEY has that value.
func cmdJSONEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: jsonenv VAR FIELD [KEY=VALUE]")
	}
	var where []string
	if len(args) == 3 {
		k, v, ok := strings.Cut(args[2], "=")
		if !ok {
			ts.Fatalf("usage: jsonenv VAR FIELD [KEY=VALUE]")
		}
		where = []string{k, v}
	}
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile("stdout")))
	var found string
	ok := false
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			ts.Fatalf("stdout is not JSON: %v", err)
		}
		if s, hit := findField(v, args[1], where); hit {
			found, ok = s, true
		}
	}
	if !ok {
		ts.Fatalf("no field %q in stdout", args[1])
	}
	ts.Setenv(args[0], found)
}

func findField(v any, field string, where []string) (string, bool) {
	var out string
	ok := false
	switch v := v.(type) {
	case map[string]any:
		match := where == nil || fmt.Sprint(v[where[0]]) == where[1]
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == field && match {
				out, ok = fmt.Sprint(v[k]), true
			} else if s, hit := findField(v[k], field, where); hit {
				out, ok = s, true
			}
		}
	case []any:
		for _, e := range v {
			if s, hit := findField(e, field, where); hit {
				out, ok = s, true
			}
		}
	}
	return out, ok
}

var heldLocks sync.Map // *testscript.TestScript -> func() releasing the lock

// holdlock REPO takes an exclusive lock on REPO from the test process (alive,
// so the lock is not stale) until releaselock or the end of the script.
func cmdHoldlock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: holdlock REPO")
	}
	ctx := context.Background()
	r, err := repo.Open(ctx, local.New(ts.MkAbs(args[0])), ts.Getenv("BUNKER_PASSWORD"))
	ts.Check(err)
	l, err := r.Lock(ctx, true)
	ts.Check(err)
	release := sync.OnceFunc(func() { l.Unlock(); r.Close() })
	heldLocks.Store(ts, release)
	ts.Defer(release)
}

func cmdReleaselock(ts *testscript.TestScript, neg bool, args []string) {
	v, ok := heldLocks.LoadAndDelete(ts)
	if !ok {
		ts.Fatalf("no lock held")
	}
	v.(func())()
}
