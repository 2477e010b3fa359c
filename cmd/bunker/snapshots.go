package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

// snapshotJSON is a snapshot as listing commands print it with --json.
type snapshotJSON struct {
	*repo.Snapshot
	ID      string `json:"id"`
	ShortID string `json:"short_id"`
}

func toSnapshotJSON(sn *repo.Snapshot) snapshotJSON {
	return snapshotJSON{Snapshot: sn, ID: sn.ID.String(), ShortID: sn.ID.Str()}
}

const timeFormat = "2006-01-02 15:04:05"

func newSnapshotsCmd(g *globalOptions) *cobra.Command {
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Long: `List the snapshots in the repository, oldest first, optionally only those of
some hosts, tags or paths. A snapshot marked '!' is incomplete: some sources
could not be read.` + repoExitStatus(),
		Example: `  bunker snapshots -r /srv/backup
  bunker snapshots -r /srv/backup --host web1 --tag nightly
  bunker snapshots -r /srv/backup --json | jq -r '.[-1].id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), sharedLock, func(r *repo.Repository) error {
				list, err := filterSnapshots(cmd.Context(), r, filter)
				if err != nil {
					return err
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
	return cmd
}

func printSnapshots(w io.Writer, list []*repo.Snapshot) error {
	rows := make([][]string, 0, len(list))
	for _, sn := range list {
		mark := " "
		if sn.Incomplete {
			mark = "!"
		}
		paths := sn.Paths
		if len(paths) == 0 {
			paths = []string{""}
		}
		for i, p := range paths {
			if i == 0 {
				rows = append(rows, []string{sn.ID.Str() + mark, sn.Time.Local().Format(timeFormat), sn.Hostname, strings.Join(sn.Tags, ","), snapshotKind(sn), p})
			} else {
				rows = append(rows, []string{"", "", "", "", "", p})
			}
		}
	}
	if err := table(w, []string{"ID", "Time", "Host", "Tags", "Kind", "Paths"}, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d snapshot%s\n", len(list), plural(len(list)))
	return err
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
