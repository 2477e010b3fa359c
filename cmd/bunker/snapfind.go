package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/bunkerbackup/bunker/repo"
)

// snapshotFilter selects snapshots by host, tag and path, as `latest` and
// `snapshots` do. Within one --tag value the comma-separated tags must all
// be present; several --tag flags are alternatives.
type snapshotFilter struct {
	Hosts []string
	Tags  []string
	Paths []string
}

func (f *snapshotFilter) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.Hosts, "host", nil, "only snapshots of this `host` (repeatable)")
	fs.StringArrayVar(&f.Tags, "tag", nil, "only snapshots with these `tags` (comma-separated: all of them; repeatable: any)")
	fs.StringArrayVar(&f.Paths, "path", nil, "only snapshots of this `path` (repeatable: all of them)")
}

func (f snapshotFilter) match(sn *repo.Snapshot) bool {
	if len(f.Hosts) > 0 && !slices.Contains(f.Hosts, sn.Hostname) {
		return false
	}
	if len(f.Tags) > 0 {
		ok := false
		for _, set := range f.Tags {
			all := true
			for _, t := range strings.Split(set, ",") {
				if t = strings.TrimSpace(t); t != "" && !slices.Contains(sn.Tags, t) {
					all = false
					break
				}
			}
			if all {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range f.Paths {
		if !slices.Contains(sn.Paths, cleanPath(p)) && !slices.Contains(sn.Paths, p) {
			return false
		}
	}
	return true
}

func cleanPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

// filterSnapshots returns the snapshots (sorted by time) that match f.
func filterSnapshots(ctx context.Context, r *repo.Repository, f snapshotFilter) ([]*repo.Snapshot, error) {
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []*repo.Snapshot
	for _, sn := range all {
		if f.match(sn) {
			out = append(out, sn)
		}
	}
	return out, nil
}

// findSnapshot resolves SNAP: "latest" (the newest snapshot matching f),
// "latest~N" (the N-th before it) or an id prefix.
func findSnapshot(ctx context.Context, r *repo.Repository, arg string, f snapshotFilter) (*repo.Snapshot, error) {
	if rest, ok := strings.CutPrefix(arg, "latest"); ok {
		back := 0
		if rest != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(rest, "~"))
			if err != nil || !strings.HasPrefix(rest, "~") || n < 0 {
				return nil, usageErrorf("bad snapshot %q: want an id prefix, latest or latest~N", arg)
			}
			back = n
		}
		list, err := filterSnapshots(ctx, r, f)
		if err != nil {
			return nil, err
		}
		if back >= len(list) {
			return nil, withHint(fmt.Errorf("no snapshot matches %q (%d match the filters)", arg, len(list)), "list them with 'bunker snapshots'")
		}
		return list[len(list)-1-back], nil
	}
	sn, err := r.FindSnapshot(ctx, arg)
	if err != nil {
		return nil, withHint(err, "list snapshots with 'bunker snapshots'; SNAP is an id prefix or 'latest'")
	}
	return sn, nil
}
