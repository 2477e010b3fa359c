package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/retention"
)

type protectionJSON struct {
	Snapshot string    `json:"snapshot"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Until    time.Time `json:"until,omitzero"`
	Active   bool      `json:"active"`
	Hostname string    `json:"hostname,omitempty"`
	Username string    `json:"username,omitempty"`
	Note     string    `json:"note,omitempty"`
}

// parseUntil reads --until: a date ("2027-01-31"), a time ("2027-01-31
// 18:00:00", RFC 3339) or a duration from now ("90d", "1y").
func parseUntil(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := retention.ParseDuration(s); err == nil {
		return d.After(now), nil
	}
	return time.Time{}, fmt.Errorf("want a date (2027-01-31), a time (2027-01-31 18:00:00) or a duration from now (90d), not %q", s)
}

func newProtectCmd(g *globalOptions) *cobra.Command {
	var (
		until  string
		note   string
		filter snapshotFilter
	)
	cmd := &cobra.Command{
		Use:   "protect [SNAP...]",
		Short: "Protect snapshots from removal",
		Long: `Protect snapshots: 'bunker forget' never removes a protected snapshot, by
policy or by id. --until ends the protection at a date or after a duration;
without it the snapshot stays protected until 'bunker unprotect'. Protecting
a snapshot again replaces its protection (to change --until).

Without SNAP, list the protections.` + repoExitStatus(),
		Example: `  bunker protect 1a2b3c4d
  bunker protect latest --until 2027-01-31 --note "audit 2026"
  bunker protect 1a2b3c4d --until 90d
  bunker protect --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			now := time.Now()
			var end time.Time
			if until != "" {
				t, err := parseUntil(until, now)
				if err != nil {
					return usageErrorf("--until: %v", err)
				}
				if !t.After(now) {
					return usageErrorf("--until %s is in the past", until)
				}
				end = t
			}
			if len(args) == 0 && (until != "" || note != "") {
				return usageErrorf("--until and --note need a snapshot to protect")
			}
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				if len(args) == 0 {
					return listProtections(g, r, cmd, now)
				}
				host, user := whoami()
				for _, a := range args {
					sn, err := findSnapshot(ctx, r, a, filter)
					if err != nil {
						return err
					}
					old, err := r.Protections(ctx)
					if err != nil {
						return err
					}
					p := &repo.Protection{Snapshot: sn.ID, Time: now, Until: end, Hostname: host, Username: user, Note: note}
					if _, err := r.SaveProtection(ctx, p); err != nil {
						return err
					}
					// The new protection is stored before the old ones go.
					for _, o := range old {
						if o.Snapshot == sn.ID && o.ID != p.ID {
							if err := r.RemoveProtection(ctx, o.ID); err != nil {
								return err
							}
						}
					}
					g.out.verbosef(1, "protection %s saved", p.ID.Str())
					if g.JSON {
						g.out.jsonLine(map[string]any{"message_type": "protected", "snapshot": sn.ID.String(), "until": untilJSON(end)})
						continue
					}
					if end.IsZero() {
						g.out.printf("protected snapshot %s until unprotected\n", sn.ID.Str())
					} else {
						g.out.printf("protected snapshot %s until %s\n", sn.ID.Str(), end.Local().Format(timeFormat))
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&until, "until", "", "end the protection at `date` (2027-01-31, '2027-01-31 18:00:00') or after a duration (90d)")
	cmd.Flags().StringVar(&note, "note", "", "why the snapshot is protected (`text`, stored encrypted)")
	filter.addFlags(cmd.Flags())
	return cmd
}

func untilJSON(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func listProtections(g *globalOptions, r *repo.Repository, cmd *cobra.Command, now time.Time) error {
	ps, err := r.Protections(cmd.Context())
	if err != nil {
		return err
	}
	docs := []protectionJSON{}
	for _, p := range ps {
		docs = append(docs, protectionJSON{Snapshot: p.Snapshot.String(), ShortID: p.Snapshot.Str(), Time: p.Time, Until: p.Until,
			Active: p.Active(now), Hostname: p.Hostname, Username: p.Username, Note: p.Note})
	}
	return g.out.document(docs, func(w io.Writer) error {
		rows := make([][]string, 0, len(docs))
		for _, d := range docs {
			until := "unprotected"
			if !d.Until.IsZero() {
				until = d.Until.Local().Format(timeFormat)
				if !d.Active {
					until += " (expired)"
				}
			}
			rows = append(rows, []string{d.ShortID, until, d.Time.Local().Format(timeFormat), d.Note})
		}
		if err := table(w, []string{"Snapshot", "Until", "Since", "Note"}, rows); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "%d protection%s\n", len(docs), plural(len(docs)))
		return err
	})
}

func newUnprotectCmd(g *globalOptions) *cobra.Command {
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "unprotect SNAP...",
		Short: "End the protection of snapshots",
		Long: `End the protection of snapshots made with 'bunker protect'. The snapshots are
not removed: 'bunker forget' may remove them from now on.` + repoExitStatus(),
		Example: `  bunker unprotect 1a2b3c4d`,
		Args:    minArgs(1, "SNAP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				for _, a := range args {
					sn, err := findSnapshot(ctx, r, a, filter)
					if err != nil {
						return err
					}
					n, err := r.RemoveProtections(ctx, sn.ID)
					if err != nil {
						return err
					}
					if g.JSON {
						g.out.jsonLine(map[string]any{"message_type": "unprotected", "snapshot": sn.ID.String(), "protections_removed": n})
						continue
					}
					if n == 0 {
						g.out.printf("snapshot %s was not protected\n", sn.ID.Str())
					} else {
						g.out.printf("snapshot %s is no longer protected\n", sn.ID.Str())
					}
				}
				return nil
			})
		},
	}
	filter.addFlags(cmd.Flags())
	return cmd
}
