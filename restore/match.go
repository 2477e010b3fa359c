package restore

import (
	"fmt"
	"path"
	"strings"
)

// pattern is an include or exclude pattern with restic's semantics: it is
// matched against the slash-separated snapshot path of an item, component
// by component, with path.Match globbing inside a component and "**"
// matching any number of components. A pattern that starts with "/" is
// anchored at the snapshot root; any other pattern may match at any depth.
// A pattern that matches a directory applies to everything below it.
type pattern struct {
	parts []string
}

func parsePatterns(list []string) ([]pattern, error) {
	var out []pattern
	for _, s := range list {
		orig := s
		s = strings.TrimRight(s, "/")
		if s == "" {
			if orig != "" {
				// "/" alone matches the whole snapshot.
				out = append(out, pattern{parts: []string{"**"}})
			}
			continue
		}
		var parts []string
		if !strings.HasPrefix(s, "/") {
			parts = append(parts, "**")
		}
		for _, c := range strings.Split(strings.TrimLeft(s, "/"), "/") {
			if c == "" || c == "." {
				continue
			}
			if c != "**" {
				if _, err := path.Match(c, ""); err != nil {
					return nil, fmt.Errorf("invalid pattern %q: %w", orig, err)
				}
			}
			parts = append(parts, c)
		}
		out = append(out, pattern{parts: parts})
	}
	return out, nil
}

// splitPath splits "/a/b" into ["a", "b"].
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matchParts matches pattern components against path components. With
// partial set it also reports true when the path is a proper prefix of a
// path the pattern could match (a directory that may contain matches).
func matchParts(pat, p []string, partial bool) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(p); i++ {
				if matchParts(pat[1:], p[i:], partial) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 {
			return partial
		}
		if ok, _ := path.Match(pat[0], p[0]); !ok {
			return false
		}
		pat, p = pat[1:], p[1:]
	}
	return len(p) == 0
}

// matchAny reports whether a pattern matches the path given as components.
func matchAny(pats []pattern, p []string) bool {
	for _, pt := range pats {
		if matchParts(pt.parts, p, false) {
			return true
		}
	}
	return false
}

// childMayMatch reports whether a pattern may match something below the
// directory p.
func childMayMatch(pats []pattern, p []string) bool {
	for _, pt := range pats {
		if matchParts(pt.parts, p, true) {
			return true
		}
	}
	return false
}
