package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/retention"
)

// snapshotJSON is a snapshot as listing commands print it with --json.
type snapshotJSON struct {
	*repo.Snapshot
	ID      string `json:"id"`
	ShortID string `json:"short_id"`
	// The markers of the snapshots listing, always present.
	Incomplete        bool `json:"incomplete"`
	CrashConsistent   bool `json:"crash_consistent"`
	ChangedDuringRead bool `json:"changed_during_read"`
	Protected         bool `json:"protected"`
	// ProtectedUntil is the end of the protection; absent while it
	// lasts until 'bunker unprotect'.
	ProtectedUntil time.Time `json:"protected_until,omitzero"`
}

// protectedSet maps the snapshots protected now to the end of their
// protection (zero: until unprotected).
type protectedSet map[repo.ID]time.Time

// loadProtected returns the snapshots of r protected now.
func loadProtected(ctx context.Context, r *repo.Repository) (protectedSet, error) {
	ps, err := r.Protections(ctx)
	if err != nil {
		return nil, err
	}
	return repo.ProtectedSnapshots(ps, time.Now()), nil
}

func toSnapshotJSON(sn *repo.Snapshot, prot protectedSet) snapshotJSON {
	crash, changed := diskMarkers(sn)
	until, protected := prot[sn.ID]
	return snapshotJSON{Snapshot: sn, ID: sn.ID.String(), ShortID: sn.ID.Str(),
		Incomplete: sn.Incomplete, CrashConsistent: crash, ChangedDuringRead: changed,
		Protected: protected, ProtectedUntil: until}
}

// diskMarkers reports whether any disk of sn was read while in use
// (crash-consistent) or changed while it was read.
func diskMarkers(sn *repo.Snapshot) (crash, changed bool) {
	for _, d := range sn.Disks {
		crash = crash || d.CrashConsistent
		changed = changed || d.ChangedDuringRead
	}
	return crash, changed
}

// Flags of the snapshots listing.
const (
	flagIncomplete = "!"
	flagCrash      = "c"
	flagChanged    = "~"
	flagProtected  = "p"
)

// snapshotFlags returns the flags column of sn.
func snapshotFlags(sn *repo.Snapshot, prot protectedSet) string {
	var f string
	if _, ok := prot[sn.ID]; ok {
		f += flagProtected
	}
	if sn.Incomplete {
		f += flagIncomplete
	}
	crash, changed := diskMarkers(sn)
	if crash {
		f += flagCrash
	}
	if changed {
		f += flagChanged
	}
	return f
}

const timeFormat = "2006-01-02 15:04:05"

// snapshotGroupJSON is one group of 'snapshots --group-by --json'.
type snapshotGroupJSON struct {
	GroupKey  retention.GroupKey `json:"group_key"`
	Snapshots []snapshotJSON     `json:"snapshots"`
}

func newSnapshotsCmd(g *globalOptions) *cobra.Command {
	var (
		filter  snapshotFilter
		latest  int
		groupBy string
		compact bool
	)
	cmd := &cobra.Command{
		Use:   "snapshots [SNAP...]",
		Short: "List snapshots",
		Long: `List the snapshots in the repository, oldest first, or only the snapshots
named (id prefixes, latest or latest~N), optionally only those of some hosts,
tags or paths; --latest N keeps only the newest N of each host and path set.
--group-by host,paths,tags lists each group of snapshots under its own
heading, as 'bunker forget' groups them; --compact leaves out the paths.

The Flags column marks protected snapshots and snapshots to treat with care:
  p  protected: 'bunker forget' does not remove it (see 'bunker protect')
  !  incomplete: some sources could not be read
  c  crash-consistent: a disk was read while in use (--force)
  ~  a disk changed while it was read: its content may be inconsistent
With --json the same facts are the fields protected (with protected_until
when the protection ends at a time), incomplete, crash_consistent and
changed_during_read. The document is an array of snapshots; with --group-by
an array of groups, each {"group_key": {"hostname", "paths", "tags"},
"snapshots": [...]}. --quiet does not shorten the listing.` + repoExitStatus(),
		Example: `  bunker snapshots -r /srv/backup
  bunker snapshots -r /srv/backup --host web1 --tag nightly
  bunker snapshots -r /srv/backup --latest 1 --compact
  bunker snapshots -r /srv/backup --group-by host
  bunker snapshots -r /srv/backup 4f3c2a1b latest
  bunker snapshots -r /srv/backup --json | jq -r '.[-1].id'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			by, err := retention.ParseGroupBy(groupBy)
			if err != nil {
				return usageErrorf("--group-by: %v", err)
			}
			if latest < 0 {
				return usageErrorf("--latest %d: want a positive number", latest)
			}
			for _, a := range args {
				if !strings.HasPrefix(a, "latest") && !isHexPrefix(a) {
					return usageErrorf("bad snapshot %q: want an id prefix, latest or latest~N", a)
				}
			}
			return g.withRepo(cmd.Context(), sharedLock, func(r *repo.Repository) error {
				list, err := namedSnapshots(cmd.Context(), r, args, filter)
				if err != nil {
					return err
				}
				if latest > 0 {
					list = latestPerGroup(list, latest)
				}
				prot, err := loadProtected(cmd.Context(), r)
				if err != nil {
					return err
				}
				if groupBy == "" {
					docs := make([]snapshotJSON, 0, len(list))
					for _, sn := range list {
						docs = append(docs, toSnapshotJSON(sn, prot))
					}
					return g.out.document(docs, func(w io.Writer) error { return printSnapshotTable(w, list, prot, compact) })
				}
				groups := groupSnapshots(list, by)
				docs := make([]snapshotGroupJSON, 0, len(groups))
				for _, grp := range groups {
					gj := snapshotGroupJSON{GroupKey: grp.key, Snapshots: []snapshotJSON{}}
					for _, sn := range grp.list {
						gj.Snapshots = append(gj.Snapshots, toSnapshotJSON(sn, prot))
					}
					docs = append(docs, gj)
				}
				return g.out.document(docs, func(w io.Writer) error {
					for i, grp := range groups {
						if i > 0 {
							fmt.Fprintln(w)
						}
						fmt.Fprintf(w, "snapshots of %s:\n", grp.key)
						if err := printSnapshotTable(w, grp.list, prot, compact); err != nil {
							return err
						}
					}
					return nil
				})
			})
		},
	}
	filter.addFlags(cmd.Flags())
	cmd.Flags().IntVar(&latest, "latest", 0, "only the newest `n` snapshots of each host and path set")
	cmd.Flags().StringVarP(&groupBy, "group-by", "g", "", "list the snapshots in groups by these `fields` (host, paths, tags)")
	cmd.Flags().BoolVarP(&compact, "compact", "c", false, "one line per snapshot, without the paths")
	return cmd
}

// namedSnapshots returns the snapshots named by args (all matching f when
// there are none), oldest first, each once.
func namedSnapshots(ctx context.Context, r *repo.Repository, args []string, f snapshotFilter) ([]*repo.Snapshot, error) {
	if len(args) == 0 {
		return filterSnapshots(ctx, r, f)
	}
	var list []*repo.Snapshot
	seen := map[repo.ID]bool{}
	for _, a := range args {
		sn, err := findSnapshot(ctx, r, a, f)
		if err != nil {
			return nil, err
		}
		if !seen[sn.ID] {
			seen[sn.ID] = true
			list = append(list, sn)
		}
	}
	slices.SortStableFunc(list, func(a, b *repo.Snapshot) int { return a.Time.Compare(b.Time) })
	return list, nil
}

// isHexPrefix reports whether s can be a prefix of a snapshot id.
func isHexPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

type snapshotGroup struct {
	key  retention.GroupKey
	list []*repo.Snapshot // oldest first
}

// groupSnapshots groups list as forget does, the group with the newest
// snapshot last.
func groupSnapshots(list []*repo.Snapshot, by retention.GroupBy) []snapshotGroup {
	gs := retention.GroupSnapshots(list, by)
	out := make([]snapshotGroup, 0, len(gs))
	for i := len(gs) - 1; i >= 0; i-- {
		grp := snapshotGroup{key: gs[i].Key}
		for j := len(gs[i].Decisions) - 1; j >= 0; j-- {
			grp.list = append(grp.list, gs[i].Decisions[j].Snapshot)
		}
		out = append(out, grp)
	}
	return out
}

// latestPerGroup keeps the newest n snapshots of each host and path set,
// in the order of list (oldest first).
func latestPerGroup(list []*repo.Snapshot, n int) []*repo.Snapshot {
	count := map[string]int{}
	keep := make([]bool, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		sn := list[i]
		key := sn.Hostname + "\x00" + strings.Join(slices.Sorted(slices.Values(sn.Paths)), "\x00")
		if count[key] < n {
			count[key]++
			keep[i] = true
		}
	}
	var out []*repo.Snapshot
	for i, sn := range list {
		if keep[i] {
			out = append(out, sn)
		}
	}
	return out
}

// printSnapshotTable writes the listing: the table, the count and the
// legend of the flags used; prot holds the protected snapshots; compact
// leaves out the paths.
func printSnapshotTable(w io.Writer, list []*repo.Snapshot, prot protectedSet, compact bool) error {
	rows := make([][]string, 0, len(list))
	used := map[string]bool{}
	for _, sn := range list {
		flags := snapshotFlags(sn, prot)
		for _, f := range flags {
			used[string(f)] = true
		}
		paths := sn.Paths
		if len(paths) == 0 {
			paths = []string{""}
		}
		if compact {
			rows = append(rows, []string{sn.ID.Str(), flags, sn.Time.Local().Format(timeFormat), sn.Hostname, strings.Join(sn.Tags, ","), snapshotKind(sn)})
			continue
		}
		for i, p := range paths {
			if i == 0 {
				rows = append(rows, []string{sn.ID.Str(), flags, sn.Time.Local().Format(timeFormat), sn.Hostname, strings.Join(sn.Tags, ","), snapshotKind(sn), p})
			} else {
				rows = append(rows, []string{"", "", "", "", "", "", p})
			}
		}
	}
	header := []string{"ID", "Flags", "Time", "Host", "Tags", "Kind", "Paths"}
	if compact {
		header = header[:len(header)-1]
	}
	if err := table(w, header, rows); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w, count(len(list), "snapshot")); err != nil {
		return err
	}
	for _, l := range []struct{ flag, text string }{
		{flagProtected, "protected: 'bunker forget' does not remove it"},
		{flagIncomplete, "incomplete: some sources could not be read"},
		{flagCrash, "crash-consistent: a disk was read while in use"},
		{flagChanged, "a disk changed while it was read"},
	} {
		if used[l.flag] {
			if _, err := fmt.Fprintf(w, "%s  %s\n", l.flag, l.text); err != nil {
				return err
			}
		}
	}
	return nil
}

// snapshotKind says what a snapshot holds: files, disks or both.
func snapshotKind(sn *repo.Snapshot) string {
	switch {
	case sn.Tree != nil && len(sn.Disks) > 0:
		return "files+disks"
	case len(sn.Disks) > 0:
		return "disks"
	}
	return "files"
}
