package main

import (
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
)

// findJSON is one snapshot of 'find --json': the nodes that matched in it.
type findJSON struct {
	Snapshot string          `json:"snapshot"`
	Time     time.Time       `json:"time"`
	Matches  []findMatchJSON `json:"matches"`
}

// findMatchJSON is one node that matched. PathB64 is set (and Path lossy)
// when the path is not valid UTF-8.
type findMatchJSON struct {
	Path    string    `json:"path"`
	PathB64 []byte    `json:"path_b64,omitempty"`
	Type    string    `json:"type"`
	Size    uint64    `json:"size"`
	ModTime time.Time `json:"mtime"`
	Mode    string    `json:"mode"`
}

type findOptions struct {
	filter     snapshotFilter
	snapshots  []string
	ignoreCase bool
	newest     string
	oldest     string
}

func newFindCmd(g *globalOptions) *cobra.Command {
	var o findOptions
	cmd := &cobra.Command{
		Use:   "find PATTERN...",
		Short: "Find files by name in snapshots",
		Long: `Find the files, directories and other entries whose names match a PATTERN
in the file trees of snapshots, as restic's find does. A pattern is a glob
(*, ?, [a-z], \ to quote). Without a "/" it is matched against each entry's
name; with one, against its whole path, component by component, where **
matches any number of directories and a leading / anchors the pattern at
the snapshot root (else it may match at any depth): "*.conf",
"/etc/*.conf", "home/*/.ssh", "/var/**/*.log". An entry matches when any
PATTERN does; a directory that matches is listed, its contents only
when they match too.

All snapshots are searched, oldest first, or those selected by --host,
--tag and --path, or those named by --snapshot (an id prefix, or latest
among the snapshots the filters select). --newest and --oldest bound the
modification time of the entries listed: a date (2026-01-31, midnight
local time), a local time (2026-01-31 18:00:00) or RFC 3339.

The matches are listed per snapshot (mode, size in bytes, modification
time, path); snapshots without a match are left out. When nothing matches
anywhere, "no matches" is said on stderr and the exit status is still 0.
Disk snapshots are skipped: the files inside their partitions are not
searched (list them with 'bunker ls SNAP disk:NAME:pN').` + repoExitStatus(),
		Example: `  bunker find '*.conf'
  bunker find -i 'readme*' --host web1 --tag nightly
  bunker find --snapshot latest --snapshot 4f3c2a1b /etc/passwd
  bunker find --oldest 2026-01-01 --newest '2026-01-31 23:59:59' '/home/**/*.pdf'
  bunker find --json '*.key' | jq -r '.[].matches[].path'`,
		Args: minArgs(1, "a pattern"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := restore.FindOptions{Patterns: args, IgnoreCase: o.ignoreCase}
			for _, b := range []struct {
				flag, value string
				t           *time.Time
			}{{"--newest", o.newest, &opts.Newest}, {"--oldest", o.oldest, &opts.Oldest}} {
				if b.value == "" {
					continue
				}
				t, err := parseTime(b.value)
				if err != nil {
					return usageErrorf("%s: %v", b.flag, err)
				}
				*b.t = t
			}
			if !opts.Newest.IsZero() && opts.Newest.Before(opts.Oldest) {
				return usageErrorf("--newest %s is before --oldest %s", o.newest, o.oldest)
			}
			// Bad patterns are usage errors whether or not the repository opens.
			if _, err := restore.NewFinder(nil, opts); err != nil {
				return usageErrorf("%v", err)
			}
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				f, err := restore.NewFinder(r, opts)
				if err != nil {
					return err
				}
				list, err := o.selectSnapshots(cmd, r)
				if err != nil {
					return err
				}
				doc := []findJSON{}
				for _, sn := range list {
					if sn.Tree == nil {
						g.out.verbosef(1, "snapshot %s holds no files, only disks: skipped", sn.ID.Str())
						continue
					}
					found, err := f.Find(ctx, *sn.Tree)
					if err != nil {
						return fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
					}
					if len(found) == 0 {
						continue
					}
					d := findJSON{Snapshot: sn.ID.String(), Time: sn.Time}
					for _, m := range found {
						d.Matches = append(d.Matches, toFindMatchJSON(m))
					}
					doc = append(doc, d)
				}
				if len(doc) == 0 && !g.Quiet && !g.JSON {
					fmt.Fprintf(g.stderr, "no matches in %s\n", count(len(list), "snapshot"))
				}
				return g.out.document(doc, func(w io.Writer) error { return printFind(w, doc) })
			})
		},
	}
	o.filter.addFlags(cmd.Flags())
	cmd.Flags().StringArrayVarP(&o.snapshots, "snapshot", "s", nil, "search only this snapshot (`ID` prefix or latest; repeatable)")
	cmd.Flags().BoolVarP(&o.ignoreCase, "ignore-case", "i", false, "match patterns case-insensitively")
	cmd.Flags().StringVarP(&o.newest, "newest", "N", "", "only entries modified at or before `time`")
	cmd.Flags().StringVarP(&o.oldest, "oldest", "O", "", "only entries modified at or after `time`")
	return cmd
}

// selectSnapshots returns the snapshots --snapshot names (each once), or
// else all those the filters select, oldest first.
func (o *findOptions) selectSnapshots(cmd *cobra.Command, r *repo.Repository) ([]*repo.Snapshot, error) {
	ctx := cmd.Context()
	if len(o.snapshots) == 0 {
		return filterSnapshots(ctx, r, o.filter)
	}
	var list []*repo.Snapshot
	for _, arg := range o.snapshots {
		sn, err := findSnapshot(ctx, r, arg, o.filter)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(list, func(s *repo.Snapshot) bool { return s.ID == sn.ID }) {
			list = append(list, sn)
		}
	}
	slices.SortStableFunc(list, func(a, b *repo.Snapshot) int { return a.Time.Compare(b.Time) })
	return list, nil
}

func toFindMatchJSON(m restore.Found) findMatchJSON {
	j := findMatchJSON{Path: m.Path, Type: string(m.Node.Type), Size: m.Node.Size, ModTime: m.Node.ModTime, Mode: modeString(m.Node)}
	if !utf8.ValidString(m.Path) {
		j.PathB64 = []byte(m.Path)
	}
	return j
}

// printFind writes a table of matches per snapshot, after a line naming
// the snapshot, with a blank line between snapshots.
func printFind(w io.Writer, doc []findJSON) error {
	for i, d := range doc {
		if i > 0 {
			fmt.Fprintln(w)
		}
		id := d.Snapshot
		if len(id) > 8 {
			id = id[:8]
		}
		fmt.Fprintf(w, "snapshot %s of %s:\n", id, d.Time.Local().Format(timeFormat))
		var rows [][]string
		for _, m := range d.Matches {
			rows = append(rows, []string{m.Mode, fmt.Sprint(m.Size), m.ModTime.Local().Format(timeFormat), displayPath(m.Path)})
		}
		if err := table(w, []string{"Mode", "Size", "Modified", "Path"}, rows); err != nil {
			return err
		}
	}
	return nil
}
