package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

// tagJSON is the --json summary of tag.
type tagJSON struct {
	MessageType string            `json:"message_type"`
	DryRun      bool              `json:"dry_run"`
	Snapshots   []tagSnapshotJSON `json:"snapshots"`
	Changed     int               `json:"changed"`
	Unchanged   int               `json:"unchanged"`
}

// tagSnapshotJSON is one changed snapshot: its old id, its new id (absent
// with --dry-run), its new tags and how many protections moved with it.
type tagSnapshotJSON struct {
	Old         string   `json:"old"`
	New         string   `json:"new,omitempty"`
	Tags        []string `json:"tags"`
	Protections int      `json:"protections_moved"`

	oldShort, newShort string
}

// tagChange is what the tag flags do to a snapshot's tags, as restic does:
// --set replaces them; otherwise --add appends the missing ones, then
// --remove takes tags away.
type tagChange struct {
	add, remove, set []string
	setGiven         bool
}

// splitTags splits comma-separated flag values into tags, dropping empty
// ones and repeats.
func splitTags(values []string) []string {
	var out []string
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

func (c tagChange) apply(old []string) []string {
	if c.setGiven {
		return c.set
	}
	out := slices.Clone(old)
	for _, t := range c.add {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return slices.DeleteFunc(out, func(t string) bool { return slices.Contains(c.remove, t) })
}

func formatTags(tags []string) string {
	if len(tags) == 0 {
		return "no tags"
	}
	return "tags " + strings.Join(tags, ", ")
}

func newTagCmd(g *globalOptions) *cobra.Command {
	var (
		add, remove, set []string
		filter           snapshotFilter
		dryRun           bool
	)
	cmd := &cobra.Command{
		Use:   "tag [SNAP...] --add TAGS | --remove TAGS | --set TAGS",
		Short: "Change the tags of snapshots",
		Long: `Change the tags of the snapshots given, or without SNAP of every snapshot
that matches --host, --tag and --path (all snapshots when none is given).

--add adds tags, --remove removes them, --set replaces all of them (--set ''
removes every tag); each takes comma-separated tags and may be repeated.
--add and --remove combine (the tags are added, then removed); --set goes
alone.

A snapshot is named by its content and never rewritten: a snapshot whose
tags change is replaced by a new one, with a new id, that records the id of
the first original in its "original" field. The new snapshot is written
before the old one is removed, and the protections of the old one ('bunker
protect') are moved to it first, so a protected snapshot stays protected.
If the command is stopped in between, both snapshots exist, both valid.
Snapshots whose tags would not change are left alone. The snapshot's time
does not change, so neither does its minimum retention.

--dry-run shows what would change without changing anything; it takes only
a shared lock.` + repoExitStatus(),
		Example: `  bunker tag latest --add keep
  bunker tag 1a2b3c4d --add audit,2026 --remove nightly
  bunker tag --host web1 --tag daily --set weekly --dry-run
  bunker tag 1a2b3c4d --set ''`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			change := tagChange{add: splitTags(add), remove: splitTags(remove), set: splitTags(set), setGiven: cmd.Flags().Changed("set")}
			switch {
			case change.setGiven && (len(add) > 0 || len(remove) > 0):
				return usageErrorf("--set replaces all tags: it cannot be combined with --add or --remove")
			case !change.setGiven && len(change.add) == 0 && len(change.remove) == 0:
				return usageErrorf("nothing to do: give --add, --remove or --set")
			}
			return g.withRepoRetry(ctx, !dryRun, func(r *repo.Repository) error {
				var snaps []*repo.Snapshot
				if len(args) == 0 {
					var err error
					if snaps, err = filterSnapshots(ctx, r, filter); err != nil {
						return err
					}
				}
				for _, a := range args {
					sn, err := findSnapshot(ctx, r, a, filter)
					if err != nil {
						return err
					}
					if !slices.ContainsFunc(snaps, func(s *repo.Snapshot) bool { return s.ID == sn.ID }) {
						snaps = append(snaps, sn)
					}
				}
				ps, err := r.Protections(ctx)
				if err != nil {
					return withHint(fmt.Errorf("read protections: %w", err), "run 'bunker check'; tag does not run while a protection cannot be read")
				}
				doc := tagJSON{MessageType: "summary", DryRun: dryRun, Snapshots: []tagSnapshotJSON{}}
				var runErr error
				for _, sn := range snaps {
					tags := change.apply(sn.Tags)
					if repo.SameTags(sn.Tags, tags) {
						doc.Unchanged++
						g.out.verbosef(1, "snapshot %s unchanged: %s", sn.ID.Str(), formatTags(sn.Tags))
						continue
					}
					sj := tagSnapshotJSON{Old: sn.ID.String(), oldShort: sn.ID.Str(), Tags: tags}
					if sj.Tags == nil {
						sj.Tags = []string{}
					}
					for _, p := range ps {
						if p.Snapshot == sn.ID {
							sj.Protections++
						}
					}
					if !dryRun {
						nsn, err := r.Retag(ctx, sn, tags)
						if err != nil {
							runErr = err
							break
						}
						sj.New, sj.newShort = nsn.ID.String(), nsn.ID.Str()
					}
					doc.Changed++
					doc.Snapshots = append(doc.Snapshots, sj)
				}
				if err := g.quietDocument(doc, func(w io.Writer) error { return printTag(w, doc) }); err != nil {
					return err
				}
				return runErr
			})
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&add, "add", nil, "add `tags` (comma-separated; repeatable)")
	fs.StringArrayVar(&remove, "remove", nil, "remove `tags` (comma-separated; repeatable)")
	fs.StringArrayVar(&set, "set", nil, "replace all tags with `tags` (comma-separated; repeatable; '' for none)")
	filter.addFlags(fs)
	fs.BoolVarP(&dryRun, "dry-run", "n", false, "show what would change without changing anything")
	return cmd
}

func printTag(w io.Writer, doc tagJSON) error {
	for _, s := range doc.Snapshots {
		moved := ""
		if s.Protections > 0 {
			moved = " (protection moved)"
			if doc.DryRun {
				moved = " (protection would move)"
			}
		}
		if doc.DryRun {
			fmt.Fprintf(w, "would change snapshot %s: %s%s\n", s.oldShort, formatTags(s.Tags), moved)
		} else {
			fmt.Fprintf(w, "snapshot %s → %s: %s%s\n", s.oldShort, s.newShort, formatTags(s.Tags), moved)
		}
	}
	total := doc.Changed + doc.Unchanged
	verb := "changed"
	if doc.DryRun {
		verb = "would change"
	}
	_, err := fmt.Fprintf(w, "%s %d of %s\n", verb, doc.Changed, count(total, "snapshot"))
	return err
}
