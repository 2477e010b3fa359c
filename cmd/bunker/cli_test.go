package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{usageErrorf("bad flag"), 2},
		{fmt.Errorf("wrapped: %w", usageErrorf("bad")), 2},
		{errors.New(`unknown command "x" for "bunker"`), 2},
		{&incompleteError{failed: 2}, 3},
		{fmt.Errorf("open: %w", repo.ErrNoRepository), 10},
		{fmt.Errorf("lock: %w", &repo.LockedError{}), 11},
		{withHint(fmt.Errorf("open: %w", repo.ErrWrongPassword), "hint"), 12},
		{fmt.Errorf("read: %w", context.Canceled), 130},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestHelp checks that every command's help has examples and lists the
// exit codes.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	g := &globalOptions{stdout: &stdout, stderr: &stderr}
	g.out = &printer{g: g}
	root := newRootCmd(g)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "__complete" || c.Name() == "__completeNoDesc" {
			return
		}
		if c.Example == "" {
			t.Errorf("%s: no examples", c.CommandPath())
		}
		if !strings.Contains(c.Long, "\nEXIT STATUS\n") || !strings.Contains(c.Long, "130  interrupted") {
			t.Errorf("%s: no EXIT STATUS section", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-02-03 04:05:06":       time.Date(2026, 2, 3, 4, 5, 6, 0, time.Local),
		"2026-02-03":                time.Date(2026, 2, 3, 0, 0, 0, 0, time.Local),
		"2026-02-03T04:05:06Z":      time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC),
		"2026-02-03T04:05:06+02:00": time.Date(2026, 2, 3, 2, 5, 6, 0, time.UTC),
	} {
		got, err := parseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01"} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("parseTime(%q) succeeded", bad)
		}
	}
}

func TestSnapshotFilter(t *testing.T) {
	sn := &repo.Snapshot{Hostname: "web1", Tags: []string{"daily", "db"}, Paths: []string{"/etc", "/srv"}}
	for _, tc := range []struct {
		f    snapshotFilter
		want bool
	}{
		{snapshotFilter{}, true},
		{snapshotFilter{Hosts: []string{"web2", "web1"}}, true},
		{snapshotFilter{Hosts: []string{"web2"}}, false},
		{snapshotFilter{Tags: []string{"daily,db"}}, true},
		{snapshotFilter{Tags: []string{"daily,weekly"}}, false},
		{snapshotFilter{Tags: []string{"weekly", "db"}}, true},
		{snapshotFilter{Paths: []string{"/etc"}}, true},
		{snapshotFilter{Paths: []string{"/etc", "/srv"}}, true},
		{snapshotFilter{Paths: []string{"/etc", "/home"}}, false},
	} {
		if got := tc.f.match(sn); got != tc.want {
			t.Errorf("%+v.match = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		n    repo.Node
		want string
	}{
		{repo.Node{Type: repo.NodeFile, Mode: 0o644}, "-rw-r--r--"},
		{repo.Node{Type: repo.NodeDir, Mode: 0o777 | fs.ModeSticky}, "drwxrwxrwt"},
		{repo.Node{Type: repo.NodeFile, Mode: 0o755 | fs.ModeSetuid}, "-rwsr-xr-x"},
		{repo.Node{Type: repo.NodeFile, Mode: 0o644 | fs.ModeSetgid}, "-rw-r-Sr--"},
		{repo.Node{Type: repo.NodeSymlink, Mode: 0o777}, "lrwxrwxrwx"},
		{repo.Node{Type: repo.NodeFIFO, Mode: 0o600}, "prw-------"},
	} {
		if got := modeString(&tc.n); got != tc.want {
			t.Errorf("modeString(%v %o) = %q, want %q", tc.n.Type, tc.n.Mode, got, tc.want)
		}
	}
}

// TestNoProgressWithoutTerminal: the progress bar is only drawn on a
// terminal; a buffer (a pipe, a log file) never gets one.
func TestNoProgressWithoutTerminal(t *testing.T) {
	var stderr bytes.Buffer
	g := &globalOptions{stderr: &stderr}
	g.out = &printer{g: g}
	if g.showProgress() {
		t.Fatal("showProgress on a buffer")
	}
	p := g.newProgress("test")
	p.Total(1, 100)
	p.Done(1, 100)
	p.done()
	if stderr.Len() != 0 {
		t.Fatalf("progress wrote %q", stderr.String())
	}
}
