package main

import (
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/retention"
)

func newInitCmd(g *globalOptions) *cobra.Command {
	var minRetention, compression string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long: `Create a new, empty repository at the location given by --repo (or
BUNKER_REPOSITORY). The password comes from --password-file,
--password-command or BUNKER_PASSWORD; on a terminal it is asked for twice.

--min-retention sets the repository's minimum retention period: no snapshot
younger than it is ever removed by 'bunker forget' (change it later with
'bunker config min-retention').

--compression sets how backups compress new data unless they choose
otherwise: auto (zstd's default level, when it pays), max (a stronger level:
about 1.5x the compression time for 5 to 10% less stored on typical files)
or off. Change it later with 'bunker config compression'.

Keep the password safe: without it the backups cannot be read by anyone.` + exitStatusHelp(),
		Example: `  bunker init -r /srv/backup
  bunker init -r /srv/backup --min-retention 30d
  bunker init -r /srv/archive --compression max
  BUNKER_PASSWORD_FILE=/etc/bunker/password bunker init -r /srv/backup`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if minRetention != "" {
				d, err := retention.ParseDuration(minRetention)
				if err != nil {
					return usageErrorf("--min-retention: %v", err)
				}
				minRetention = d.String()
			}
			if err := repo.ValidCompression(compression); err != nil {
				return usageErrorf("--compression: %v", err)
			}
			be, err := g.backend()
			if err != nil {
				return err
			}
			pw, err := g.readNewPassword("enter a password for the new repository: ")
			if err != nil {
				return err
			}
			host, user := whoami()
			r, err := repo.Init(cmd.Context(), be, pw, repo.InitOptions{Hostname: host, Username: user, MinRetention: minRetention, Compression: compression})
			if err != nil {
				return err
			}
			defer r.Close()
			id := r.Config().ID
			if g.JSON {
				g.out.jsonLine(map[string]string{"message_type": "initialized", "id": id, "repository": be.Location()})
				return nil
			}
			g.out.printf("created bunker repository %s at %s\n", shortStr(id), be.Location())
			g.out.printf("\nWithout the password the repository cannot be read: losing it means losing the data.\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&minRetention, "min-retention", "", "minimum retention period, e.g. 30d (no snapshot younger is removed)")
	cmd.Flags().StringVar(&compression, "compression", "auto", "default compression of backups: `mode` auto, max or off")
	return cmd
}

// shortStr returns the first 8 characters of an id string.
func shortStr(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
