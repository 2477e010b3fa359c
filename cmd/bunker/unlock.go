package main

import (
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

func newUnlockCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks",
		Long: `Remove stale locks: those of a process that no longer runs on this host, and
those not refreshed for 30 minutes. Locks of running processes are kept.` + repoExitStatus(),
		Example: `  bunker unlock -r /srv/backup`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), noLock, func(r *repo.Repository) error {
				n, err := r.RemoveStaleLocks(cmd.Context())
				if err != nil {
					return err
				}
				if g.JSON {
					g.out.jsonLine(map[string]any{"message_type": "summary", "removed_locks": n})
					return nil
				}
				g.out.printf("removed %d stale lock%s\n", n, plural(n))
				return nil
			})
		},
	}
}
