package backup

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExcluderOptions covers the restic-style options: case-insensitive
// patterns, marker files and cache directory tags.
func TestExcluderOptions(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("tagged/.nobackup", "")
	mk("cache/"+CacheDirTag, cacheDirTagSignature+"\n# a cache\n")
	mk("notcache/"+CacheDirTag, "no signature here, long enough to be read\n")
	mk("plain/file", "x")
	e, err := Options{IExcludes: []string{"*.TMP", "/x/Build"}, ExcludeIfPresent: []string{".nobackup"}, ExcludeCaches: true}.excluder()
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/a/b/file.tmp":                     true,
		"/a/b/FILE.Tmp":                     true,
		"/x/BUILD":                          true,
		"/y/x/build":                        false,
		"/a/b/file.txt":                     false,
		filepath.Join(dir, "tagged"):        true,
		filepath.Join(dir, "cache"):         true,
		filepath.Join(dir, "notcache"):      false,
		filepath.Join(dir, "plain"):         false,
		filepath.Join(dir, "plain", "file"): false,
	} {
		if got := e.excluded(p); got != want {
			t.Errorf("excluded(%s) = %v, want %v", p, got, want)
		}
	}
	if _, err := (Options{ExcludeIfPresent: []string{"a/b"}}).excluder(); err == nil {
		t.Error("a path as exclude-if-present name was accepted")
	}
	if _, err := (Options{IExcludes: []string{"[z-"}}).excluder(); err == nil {
		t.Error("a bad case-insensitive pattern was accepted")
	}
}
