// Tests of the code base itself: import boundaries and package docs
// (tailscale-style deps tests). They keep the architecture honest: leaves
// stay leaves and third-party dependencies stay at the edges.
package bunker_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkgInfo struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
	GoFiles    []string
}

const mod = "github.com/bunkerbackup/bunker"

func listPackages(t *testing.T) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkgInfo
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Name == "" {
			continue
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, mod), "/") }

func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }

// TestImportRules checks which packages may import what.
func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, dep := range p.Deps {
			d := rel(dep)
			edgeOnly := []string{"github.com/spf13/cobra", "github.com/spf13/viper", "github.com/schollz/progressbar/v3"}
			for _, e := range edgeOnly {
				if dep == e && !under(r, "cmd") {
					t.Errorf("%s depends on %s: CLI libraries belong in cmd/ only", r, e)
				}
			}
			if dep == "github.com/restic/chunker" && !under(r, "chunk") && !under(r, "backup") && !under(r, "cmd") {
				t.Errorf("%s depends on restic/chunker: chunking belongs in chunk/", r)
			}
			switch {
			case under(r, "vmdisk"):
				for _, bad := range []string{"repo", "backup", "restore", "chunk", "cmd", "schedule"} {
					if strings.HasPrefix(dep, mod) && under(d, bad) {
						t.Errorf("%s imports %s: vmdisk is a leaf and knows nothing of repositories", r, d)
					}
				}
			case under(r, "repo"):
				for _, bad := range []string{"chunk", "backup", "restore", "vmdisk", "cmd", "schedule"} {
					if strings.HasPrefix(dep, mod) && under(d, bad) {
						t.Errorf("%s imports %s: repo stores bytes and must not know the pipelines", r, d)
					}
				}
			case under(r, "backup"):
				if strings.HasPrefix(dep, mod) && (under(d, "restore") || under(d, "cmd")) {
					t.Errorf("%s imports %s: backup and restore are peers", r, d)
				}
			case under(r, "restore"):
				if strings.HasPrefix(dep, mod) && (under(d, "backup") || under(d, "cmd")) {
					t.Errorf("%s imports %s: backup and restore are peers", r, d)
				}
			}
		}
		if !under(r, "cmd") {
			for _, imp := range p.Imports {
				if imp == "testing" && !strings.HasSuffix(r, "test") {
					t.Errorf("%s imports testing in non-test code: put test helpers in a ...test package", r)
				}
			}
		}
	}
}

// TestPackageDocs requires a package doc comment on every library package.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.Name == "main" || len(p.GoFiles) == 0 {
			continue // commands, and directories holding only tests
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", rel(p.ImportPath))
		}
	}
}
