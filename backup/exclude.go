package backup

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Match reports whether the exclude pattern matches the absolute,
// slash-separated path p.
//
// A pattern is a sequence of components separated by "/". Each component
// is matched with path.Match ("*", "?", "[a-z]", "\\" escapes) against one
// path component; the component "**" matches any number of components,
// including none. A pattern that starts with "/" is anchored at the root;
// any other pattern may match at any depth, so "*.tmp" excludes every
// .tmp file and "cache/**/*.bin" every .bin below any directory named
// cache. A pattern that matches a directory excludes everything in it. A
// trailing "/" is ignored.
func Match(pattern, p string) (bool, error) {
	c, err := compilePattern(pattern)
	if err != nil {
		return false, err
	}
	return c.match(splitPath(p)), nil
}

type compiled struct {
	anchored bool
	comps    []string
}

func compilePattern(pattern string) (compiled, error) {
	c := compiled{anchored: strings.HasPrefix(pattern, "/"), comps: splitPath(pattern)}
	for _, comp := range c.comps {
		if _, err := path.Match(comp, ""); err != nil {
			return c, fmt.Errorf("invalid exclude pattern %q: %w", pattern, err)
		}
	}
	return c, nil
}

func (c compiled) match(sc []string) bool {
	if len(c.comps) == 0 {
		return false
	}
	if c.anchored {
		return matchComponents(c.comps, sc)
	}
	for i := range sc {
		if matchComponents(c.comps, sc[i:]) {
			return true
		}
	}
	return false
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func matchComponents(pat, s []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 1 && pat[1] == "**" {
				pat = pat[1:]
			}
			for k := 0; k <= len(s); k++ {
				if matchComponents(pat[1:], s[k:]) {
					return true
				}
			}
			return false
		}
		if len(s) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], s[0]); !ok {
			return false
		}
		pat, s = pat[1:], s[1:]
	}
	return len(s) == 0
}

// ParseExcludeFile returns the patterns of an exclude file: one per line;
// blank lines and lines starting with "#" are ignored, surrounding spaces
// are trimmed.
func ParseExcludeFile(content []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// CacheDirTag is the file that marks a cache directory
// (https://bford.info/cachedir/) and the signature it must start with.
const (
	CacheDirTag          = "CACHEDIR.TAG"
	cacheDirTagSignature = "Signature: 8a477f597d28d172789f06886806bc55"
)

// excluder matches paths against compiled patterns (IExcludes folded to
// lower case) and looks for marker files in directories.
type excluder struct {
	pats    []compiled
	ipats   []compiled
	markers []string // a directory holding one of these is excluded
	caches  bool     // a directory holding a valid CACHEDIR.TAG is excluded
}

func newExcluder(patterns []string) (excluder, error) {
	return Options{Excludes: patterns}.excluder()
}

// excluder compiles the exclude options.
func (o Options) excluder() (excluder, error) {
	e := excluder{markers: o.ExcludeIfPresent, caches: o.ExcludeCaches}
	for _, p := range o.Excludes {
		c, err := compilePattern(p)
		if err != nil {
			return e, err
		}
		e.pats = append(e.pats, c)
	}
	for _, p := range o.IExcludes {
		c, err := compilePattern(strings.ToLower(p))
		if err != nil {
			return e, err
		}
		e.ipats = append(e.ipats, c)
	}
	for _, m := range o.ExcludeIfPresent {
		if m == "" || strings.ContainsRune(m, '/') {
			return e, fmt.Errorf("invalid exclude-if-present name %q: want a file name", m)
		}
	}
	return e, nil
}

// excluded reports whether the file or directory at the absolute path p is
// left out: it matches a pattern, or it is a directory that holds a marker
// file.
func (e excluder) excluded(p string) bool {
	if len(e.pats)+len(e.ipats) > 0 {
		sc := splitPath(p)
		for _, c := range e.pats {
			if c.match(sc) {
				return true
			}
		}
		if len(e.ipats) > 0 {
			lc := splitPath(strings.ToLower(p))
			for _, c := range e.ipats {
				if c.match(lc) {
					return true
				}
			}
		}
	}
	for _, m := range e.markers {
		if _, err := os.Lstat(filepath.Join(p, m)); err == nil {
			return true
		}
	}
	return e.caches && isCacheDir(p)
}

// isCacheDir reports whether dir holds a CACHEDIR.TAG that starts with the
// standard signature.
func isCacheDir(dir string) bool {
	f, err := os.Open(filepath.Join(dir, CacheDirTag))
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(cacheDirTagSignature))
	_, err = io.ReadFull(f, buf)
	return err == nil && string(buf) == cacheDirTagSignature
}
