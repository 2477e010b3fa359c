package restore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

// countingTrees counts LoadTree calls.
type countingTrees struct {
	*fakeRepo
	trees int
}

func (c *countingTrees) LoadTree(ctx context.Context, id repo.ID) (*repo.Tree, error) {
	c.trees++
	return c.fakeRepo.LoadTree(ctx, id)
}

// findFixture saves two snapshot trees that share the subtree /etc:
//
//	/etc/hosts, /etc/App.conf, /etc/sub/b.conf   (both)
//	/home/ann/a.conf (first), /home/ann/notes.txt (second)
func findFixture(s *fakeRepo) (first, second repo.ID) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	file := func(name string, mtime time.Time) *repo.Node {
		return &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, Size: 3, ModTime: mtime}
	}
	dir := func(name string, kids ...*repo.Node) *repo.Node {
		id := s.saveTree(&repo.Tree{Nodes: kids})
		return &repo.Node{Name: name, Type: repo.NodeDir, Mode: 0o755, ModTime: t0, Subtree: &id}
	}
	etc := dir("etc", file("App.conf", t0), file("hosts", t0.Add(time.Hour)), dir("sub", file("b.conf", t0)))
	first = s.saveTree(&repo.Tree{Nodes: []*repo.Node{etc, dir("home", dir("ann", file("a.conf", t0)))}})
	second = s.saveTree(&repo.Tree{Nodes: []*repo.Node{etc, dir("home", dir("ann", file("notes.txt", t0)))}})
	return first, second
}

func TestFinder(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		opts  FindOptions
		first []string
		// second is what the second snapshot (sharing /etc) yields.
		second []string
	}{
		{"base name", FindOptions{Patterns: []string{"*.conf"}},
			[]string{"/etc/App.conf", "/etc/sub/b.conf", "/home/ann/a.conf"}, []string{"/etc/App.conf", "/etc/sub/b.conf"}},
		{"case", FindOptions{Patterns: []string{"app.*"}}, nil, nil},
		{"ignore case", FindOptions{Patterns: []string{"APP.*", "/ETC/SUB/*"}, IgnoreCase: true},
			[]string{"/etc/App.conf", "/etc/sub/b.conf"}, []string{"/etc/App.conf", "/etc/sub/b.conf"}},
		{"directory", FindOptions{Patterns: []string{"ann"}},
			[]string{"/home/ann"}, []string{"/home/ann"}},
		{"full path", FindOptions{Patterns: []string{"etc/*"}},
			[]string{"/etc/App.conf", "/etc/hosts", "/etc/sub"}, []string{"/etc/App.conf", "/etc/hosts", "/etc/sub"}},
		{"anchored", FindOptions{Patterns: []string{"/sub/*"}}, nil, nil},
		{"double star", FindOptions{Patterns: []string{"/etc/**/*.conf"}},
			[]string{"/etc/App.conf", "/etc/sub/b.conf"}, []string{"/etc/App.conf", "/etc/sub/b.conf"}},
		{"several", FindOptions{Patterns: []string{"hosts", "notes.txt"}},
			[]string{"/etc/hosts"}, []string{"/etc/hosts", "/home/ann/notes.txt"}},
		{"oldest", FindOptions{Patterns: []string{"*"}, Oldest: t0.Add(time.Minute)},
			[]string{"/etc/hosts"}, []string{"/etc/hosts"}},
		{"newest", FindOptions{Patterns: []string{"*s*"}, Newest: t0},
			[]string{"/etc/sub"}, []string{"/etc/sub", "/home/ann/notes.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &countingTrees{fakeRepo: newFakeRepo()}
			first, second := findFixture(s.fakeRepo)
			f, err := NewFinder(s, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range []struct {
				root repo.ID
				want []string
			}{{first, tc.first}, {second, tc.second}} {
				found, err := f.Find(context.Background(), c.root)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, m := range found {
					got = append(got, m.Path)
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("snapshot %d: found %q, want %q", i+1, got, c.want)
				}
			}
		})
	}
}

// TestFinderSharedTrees checks that a subtree two snapshots share is
// loaded once, and with local patterns once wherever it is.
func TestFinderSharedTrees(t *testing.T) {
	s := &countingTrees{fakeRepo: newFakeRepo()}
	first, second := findFixture(s.fakeRepo)
	f, err := NewFinder(s, FindOptions{Patterns: []string{"*.conf"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range []repo.ID{first, second, first} {
		if _, err := f.Find(context.Background(), root); err != nil {
			t.Fatal(err)
		}
	}
	// first: root, etc, sub, home, ann; second: root, home, ann.
	if s.trees != 8 {
		t.Errorf("loaded %d trees, want 8", s.trees)
	}
}

func TestFinderPrunes(t *testing.T) {
	s := &countingTrees{fakeRepo: newFakeRepo()}
	first, _ := findFixture(s.fakeRepo)
	f, err := NewFinder(s, FindOptions{Patterns: []string{"/etc/hosts"}})
	if err != nil {
		t.Fatal(err)
	}
	found, err := f.Find(context.Background(), first)
	if err != nil || len(found) != 1 || found[0].Path != "/etc/hosts" || found[0].Node.Size != 3 {
		t.Fatalf("found %v, %v", found, err)
	}
	// root and etc only: /etc/sub and /home cannot hold a match.
	if s.trees != 2 {
		t.Errorf("loaded %d trees, want 2", s.trees)
	}
}

func TestFinderBadPattern(t *testing.T) {
	for _, p := range []string{"[", "/", "a/[b"} {
		if _, err := NewFinder(newFakeRepo(), FindOptions{Patterns: []string{p}}); err == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
	if _, err := NewFinder(newFakeRepo(), FindOptions{}); err == nil {
		t.Error("no pattern accepted")
	}
}
