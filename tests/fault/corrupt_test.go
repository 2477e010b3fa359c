package fault_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
)

// flipBit inverts one bit of the file at off.
func flipBit(t *testing.T, path string, off int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		// Repository files are read-only; the test owns them.
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			t.Fatal(err)
		}
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("read %s at %d: %v", path, off, err)
	}
	b[0] ^= 1 << (bit % 8)
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// packPath is the file of a pack.
func packPath(repoDir string, id repo.ID) string {
	s := id.String()
	return filepath.Join(repoDir, "data", s[:2], s)
}

// checkJSON is the part of `check --json` the tests read.
type checkJSON struct {
	OK       bool `json:"ok"`
	Problems []struct {
		Kind  string    `json:"kind"`
		File  string    `json:"file"`
		Pack  *repo.ID  `json:"pack"`
		Blobs []repo.ID `json:"blobs"`
	} `json:"problems"`
	Affected []struct {
		Snapshot repo.ID   `json:"snapshot"`
		Path     string    `json:"path"`
		Blobs    []repo.ID `json:"blobs"`
	} `json:"affected"`
}

// TestCorruptPack flips a byte inside a data blob of a pack.
func TestCorruptPack(t *testing.T) {
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	early := filepath.Join(base, "early")
	genTree(t, early, treeSpec{seed: 61, large: 1, largeSize: 1 << 20, small: 10, smallSize: 2 << 10})
	first, _ := backup(t, 0, repoDir, early)
	earlyPacks := openRepo(t, repoDir).IndexedPacks()

	src := filepath.Join(base, "src")
	genTree(t, src, treeSpec{seed: 62, large: 4, largeSize: 3 << 20, small: 40, smallSize: 8 << 10, dirsPerLvl: 2})
	second, _ := backup(t, 0, repoDir, src)

	// A data blob in the middle of a pack of the second snapshot.
	r := openRepo(t, repoDir)
	var victim repo.PackedBlob
	for _, pack := range r.IndexedPacks() {
		if slices.Contains(earlyPacks, pack) {
			continue
		}
		blobs, err := r.LoadPackHeader(context.Background(), pack)
		if err != nil {
			t.Fatal(err)
		}
		var data []repo.PackedBlob
		for _, pb := range blobs {
			if pb.Type == repo.DataBlob {
				data = append(data, pb)
			}
		}
		if len(data) > 0 {
			victim = data[len(data)/2]
			break
		}
	}
	if victim.Length == 0 {
		t.Fatal("no data pack found")
	}
	r.Close()
	flipBit(t, packPath(repoDir, victim.Pack), int64(victim.Offset)+int64(victim.Length)/2, 3)

	res := mustRun(t, 1, "check", "-r", repoDir, "--read-data")
	t.Logf("%s", res)
	pack, blob := victim.Pack.String(), victim.ID.String()
	if !strings.Contains(res.stdout, pack[:8]) {
		t.Errorf("check does not name the damaged pack %s:\n%s", pack, res)
	}
	if !strings.Contains(res.stdout, blob[:8]) {
		t.Errorf("check does not name the damaged blob %s:\n%s", blob, res)
	}
	wantStderr(t, res, `(?m)^bunker: error: check found [0-9]+ errors? in repository `+regexp.QuoteMeta(repoDir)+`$`, `(?m)^bunker: hint: `)

	// The JSON document traces the blob to the files that use it.
	res = mustRun(t, 1, "check", "-r", repoDir, "--read-data", "--json")
	var doc checkJSON
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("check --json: %v\n%s", err, res)
	}
	damaged := false
	for _, p := range doc.Problems {
		if p.Kind == "blob_damaged" && p.Pack != nil && *p.Pack == victim.Pack && slices.Contains(p.Blobs, victim.ID) {
			damaged = true
		}
	}
	if !damaged {
		t.Errorf("check --json has no blob_damaged problem for pack %s blob %s:\n%s", pack, blob, res.stdout)
	}
	affected := map[string]bool{} // relative to src
	for _, u := range doc.Affected {
		if u.Snapshot.String() != second.SnapshotID {
			t.Errorf("check says snapshot %s is affected; only %s uses the pack", u.Snapshot, second.SnapshotID)
		}
		rel, err := filepath.Rel(src, u.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("affected path %q is not in %s", u.Path, src)
			continue
		}
		affected[rel] = true
		if !strings.Contains(res.stdout, u.Path) {
			t.Errorf("affected file %s not named", u.Path)
		}
	}
	if len(affected) == 0 {
		t.Fatalf("check names no affected file:\n%s", res.stdout)
	}

	// restore restores everything else and lists what it could not.
	out := t.TempDir()
	res = mustRun(t, 1, "restore", "-r", repoDir, second.SnapshotID, "--target", out)
	t.Logf("%s", res)
	for rel := range affected {
		wantStderr(t, res, `(?m)^bunker: warning: .*`+regexp.QuoteMeta(filepath.Join(src, rel)))
	}
	wantStderr(t, res, fmt.Sprintf(`(?m)^bunker: error: could not restore %d item`, len(affected)))
	compareTrees(t, src, filepath.Join(out, src), affected)
	for rel := range affected {
		// A file that could not be restored is not left in place looking whole.
		want, _ := os.ReadFile(filepath.Join(src, rel))
		if got, err := os.ReadFile(filepath.Join(out, src, rel)); err == nil && string(got) == string(want) {
			t.Errorf("%s restored intact although its blob is damaged", rel)
		}
	}
	// The earlier snapshot does not use the pack.
	restoreAndCompare(t, repoDir, first.SnapshotID, early)
}

// tamperCase is one repository file to damage.
type tamperCase struct {
	name string
	file string // relative to the repository
}

// TestTamper flips one bit in every kind of repository file, at several
// positions, and checks that the damage is detected and never silently
// restored.
func TestTamper(t *testing.T) {
	base := t.TempDir()
	master := filepath.Join(base, "repo")
	initRepo(t, master)
	src := filepath.Join(base, "src")
	genTree(t, src, treeSpec{seed: 71, large: 1, largeSize: 1 << 20, small: 20, smallSize: 4 << 10, dirsPerLvl: 2})
	backup(t, 0, master, src)

	// A second key, so a damaged key file can be found by check while the
	// first one opens the repository.
	r := openRepo(t, master)
	usedKey := r.KeyID()
	if _, err := r.AddKey(context.Background(), password+" 2", "host", "user"); err != nil {
		t.Fatal(err)
	}
	var cases []tamperCase
	add := func(name, dir string) {
		for _, f := range listFiles(t, filepath.Join(master, dir)) {
			cases = append(cases, tamperCase{name: name, file: filepath.Join(dir, f)})
		}
	}
	cases = append(cases, tamperCase{name: "config", file: "config"})
	for _, f := range listFiles(t, filepath.Join(master, "keys")) {
		name := "key (other)"
		if f == usedKey.String() {
			name = "key (in use)"
		}
		cases = append(cases, tamperCase{name: name, file: filepath.Join("keys", f)})
	}
	add("snapshot", "snapshots")
	add("index", "index")
	for _, pack := range r.IndexedPacks() {
		blobs, err := r.LoadPackHeader(context.Background(), pack)
		if err != nil {
			t.Fatal(err)
		}
		name := "data pack"
		if blobs[0].Type == repo.TreeBlob {
			name = "tree pack"
		}
		rel, _ := filepath.Rel(master, packPath(master, pack))
		cases = append(cases, tamperCase{name: name, file: rel})
	}
	r.Close()

	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range cases {
		fi, err := os.Stat(filepath.Join(master, c.file))
		if err != nil {
			t.Fatal(err)
		}
		// The first byte (the last for packs, whose header is at the end)
		// and a random one.
		edge := int64(0)
		if strings.HasPrefix(c.file, "data") {
			edge = fi.Size() - 1
		}
		offsets := []int64{edge, rng.Int64N(fi.Size())}
		for _, off := range offsets {
			bit := uint(rng.IntN(8))
			t.Run(fmt.Sprintf("%s/%d.%d", c.name, off, bit), func(t *testing.T) {
				t.Parallel()
				repoDir := filepath.Join(t.TempDir(), "repo")
				copyDir(t, master, repoDir)
				flipBit(t, filepath.Join(repoDir, c.file), off, bit)

				res := run(t, "check", "-r", repoDir, "--read-data")
				if res.code == 0 {
					t.Fatalf("a flipped bit in %s at %d is not detected:\n%s", c.file, off, res)
				}
				id := filepath.Base(c.file)
				switch c.name {
				case "config":
					wantStderr(t, res, `(?m)^bunker: error: .*config`)
				case "key (in use)":
					bugs := newExpectations(t)
					defer bugs.done()
					bugs.check(res.code != 12 || strings.Contains(res.stderr, id[:8]), "damaged-key-says-wrong-password",
						"a damaged key file (keys/%s, its content no longer matches its name) is reported as a wrong password (exit 12, hint to check the password) instead of naming the damaged key file:\n%s", id[:8], res)
				default:
					if !strings.Contains(res.stdout+res.stderr, id[:8]) {
						t.Errorf("check does not name the damaged file %s:\n%s", c.file, res)
					}
				}
				out := t.TempDir()
				res = run(t, "restore", "-r", repoDir, "latest", "--target", out)
				if res.code == 0 {
					// Only when the damage does not touch what a restore
					// reads (a key not used, or a pack header copy the index
					// makes redundant) may it succeed, and then byte-exact.
					compareTrees(t, src, filepath.Join(out, src), nil)
					return
				}
				if res.stderr == "" {
					t.Errorf("restore failed without a message:\n%s", res)
				}
			})
		}
	}
}
