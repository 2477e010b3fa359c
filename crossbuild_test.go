package bunker_test

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// crossTargets are the release's systems other than Linux (see
// .goreleaser.yaml): they must keep compiling, tests included.
var crossTargets = []struct{ goos, goarch string }{
	{"darwin", "arm64"},
	{"darwin", "amd64"},
	{"windows", "amd64"},
}

// TestCrossBuild type-checks every package of the module with its tests,
// and everything they import, for each cross target, so that Linux-only
// code in a shared file cannot silently break the darwin or windows
// build. Type-checking from source finds the same errors as compiling
// (undefined system calls and constants, mismatched field types, unused
// imports) in seconds, where an uncached go vet for another system takes
// minutes.
func TestCrossBuild(t *testing.T) {
	for _, tc := range crossTargets {
		t.Run(tc.goos+"_"+tc.goarch, func(t *testing.T) {
			cfg := &packages.Config{
				Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports |
					packages.NeedDeps | packages.NeedSyntax | packages.NeedTypes,
				Tests: true,
				Env:   append(os.Environ(), "GOOS="+tc.goos, "GOARCH="+tc.goarch, "CGO_ENABLED=0", "GOFLAGS=-mod=readonly"),
			}
			pkgs, err := packages.Load(cfg, "./...")
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var own int
			seen := map[string]bool{} // a package and its test variant share files
			packages.Visit(pkgs, nil, func(p *packages.Package) {
				if strings.HasPrefix(p.PkgPath, mod) {
					own++
				}
				for _, e := range p.Errors {
					if msg := e.Error(); !seen[msg] {
						seen[msg] = true
						t.Errorf("GOOS=%s GOARCH=%s %s: %s", tc.goos, tc.goarch, p.PkgPath, msg)
					}
				}
			})
			if own < 20 {
				t.Fatalf("only %d packages of the module loaded", own)
			}
		})
	}
}
