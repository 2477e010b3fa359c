package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
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
}

func toSnapshotJSON(sn *repo.Snapshot) snapshotJSON {
	crash, changed := diskMarkers(sn)
	return snapshotJSON{Snapshot: sn, ID: sn.ID.String(), ShortID: sn.ID.Str(),
		Incomplete: sn.Incomplete, CrashConsistent: crash, ChangedDuringRead: changed}
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
)

// snapshotFlags returns the flags column of sn.
func snapshotFlags(sn *repo.Snapshot) string {
	var f string
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

func newSnapshotsCmd(g *globalOptions) *cobra.Command {
	var (
		filter snapshotFilter
		latest int
	)
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Long: `List the snapshots in the repository, oldest first, optionally only those of
some hosts, tags or paths; --latest N keeps only the newest N of each host
and path set. The Flags column marks snapshots to treat with care:
  !  incomplete: some sources could not be read
  c  crash-consistent: a disk was read while in use (--force)
  ~  a disk changed while it was read: its content may be inconsistent
With --json the same facts are the fields incomplete, crash_consistent and
changed_during_read.` + repoExitStatus(),
		Example: `  bunker snapshots -r /srv/backup
  bunker snapshots -r /srv/backup --host web1 --tag nightly
  bunker snapshots -r /srv/backup --latest 1
  bunker snapshots -r /srv/backup --json | jq -r '.[-1].id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), sharedLock, func(r *repo.Repository) error {
				list, err := filterSnapshots(cmd.Context(), r, filter)
				if err != nil {
					return err
				}
				if latest > 0 {
					list = latestPerGroup(list, latest)
				}
				docs := make([]snapshotJSON, 0, len(list))
				for _, sn := range list {
					docs = append(docs, toSnapshotJSON(sn))
				}
				return g.out.document(docs, func(w io.Writer) error { return printSnapshots(w, list) })
			})
		},
	}
	filter.addFlags(cmd.Flags())
	cmd.Flags().IntVar(&latest, "latest", 0, "only the newest `n` snapshots of each host and path set")
	return cmd
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

func printSnapshots(w io.Writer, list []*repo.Snapshot) error {
	rows := make([][]string, 0, len(list))
	used := map[string]bool{}
	for _, sn := range list {
		flags := snapshotFlags(sn)
		for _, f := range flags {
			used[string(f)] = true
		}
		paths := sn.Paths
		if len(paths) == 0 {
			paths = []string{""}
		}
		for i, p := range paths {
			if i == 0 {
				rows = append(rows, []string{sn.ID.Str(), flags, sn.Time.Local().Format(timeFormat), sn.Hostname, strings.Join(sn.Tags, ","), snapshotKind(sn), p})
			} else {
				rows = append(rows, []string{"", "", "", "", "", "", p})
			}
		}
	}
	if err := table(w, []string{"ID", "Flags", "Time", "Host", "Tags", "Kind", "Paths"}, rows); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%d snapshot%s\n", len(list), plural(len(list))); err != nil {
		return err
	}
	for _, l := range []struct{ flag, text string }{
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

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
