package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

// change is one line of 'diff': + added, - removed, M content modified,
// T type changed, U metadata (mode, owner, times, xattrs) changed.
type change struct {
	Modifier string `json:"modifier"`
	Path     string `json:"path"`
}

type diffStats struct {
	Added    int `json:"added"`
	Removed  int `json:"removed"`
	Modified int `json:"modified"`
	Metadata int `json:"metadata_changed"`
}

type diffJSON struct {
	From    string    `json:"from"`
	To      string    `json:"to"`
	Changes []change  `json:"changes"`
	Stats   diffStats `json:"stats"`
}

func newDiffCmd(g *globalOptions) *cobra.Command {
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "diff SNAP1 SNAP2",
		Short: "Show what changed between two snapshots",
		Long: `Show the differences between two snapshots, one path per line:
  +  added            -  removed
  M  content changed  T  type changed    U  metadata changed
Disks are compared by their content digest and appear as disk:NAME.
Directories whose tree is unchanged are not read.` + repoExitStatus(),
		Example: `  bunker diff 4f3c2a1b 9e8d7c6b
  bunker diff 4f3c2a1b latest --json`,
		Args: exactArgs(2, "two snapshots"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				a, err := findSnapshot(ctx, r, args[0], filter)
				if err != nil {
					return err
				}
				b, err := findSnapshot(ctx, r, args[1], filter)
				if err != nil {
					return err
				}
				doc := diffJSON{From: a.ID.String(), To: b.ID.String(), Changes: []change{}}
				if err := diffTrees(ctx, r, a.Tree, b.Tree, "/", &doc); err != nil {
					return err
				}
				diffDisks(a, b, &doc)
				return g.out.document(doc, func(w io.Writer) error {
					for _, c := range doc.Changes {
						fmt.Fprintf(w, "%s  %s\n", c.Modifier, displayPath(c.Path))
					}
					s := doc.Stats
					_, err := fmt.Fprintf(w, "\n%d added, %d removed, %d modified, %d with changed metadata\n", s.Added, s.Removed, s.Modified, s.Metadata)
					return err
				})
			})
		},
	}
	filter.addFlags(cmd.Flags())
	return cmd
}

func (d *diffJSON) add(mod, p string) {
	d.Changes = append(d.Changes, change{mod, p})
	switch mod {
	case "+":
		d.Stats.Added++
	case "-":
		d.Stats.Removed++
	case "U":
		d.Stats.Metadata++
	default:
		d.Stats.Modified++
	}
}
