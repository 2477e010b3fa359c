package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/retention"
)

// repoSettingsJSON is the --json document of config. Every field is
// always present; a setting that is not set is null.
type repoSettingsJSON struct {
	ID           string  `json:"id"`
	Version      int     `json:"version"`
	Compression  string  `json:"compression"`
	MinRetention *string `json:"min_retention"`
}

// repoSettingsHelp describes the --json document of config.
const repoSettingsHelp = `
With --json the settings are one JSON object, every field always present:
  {"id": "<64 hex digits>", "version": 1, "compression": "auto",
   "min_retention": "30d"}
min_retention is null when no minimum is set.`

func newConfigMinRetentionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "min-retention [PERIOD|off]",
		Short: "Show or set the repository's minimum retention period",
		Long: `Show or set the minimum retention period of the repository: no snapshot
younger than it is removed by 'bunker forget', by policy or by id. PERIOD is
a duration such as 30d, 2w, 1y or 1m15d; 'off' removes the minimum.

Setting it takes the exclusive lock, rewrites the repository config and
prints the new settings (nothing with --quiet).` + repoSettingsHelp + repoExitStatus(),
		Example: `  bunker config min-retention
  bunker config min-retention 30d
  bunker config min-retention off`,
		Args: rangeArgs(0, 1, "PERIOD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 0 {
				return g.withRepo(ctx, noLock, func(r *repo.Repository) error {
					return printRepoSettings(g, r.Config())
				})
			}
			period := args[0]
			if period == "off" || period == "0" {
				period = ""
			} else {
				d, err := retention.ParseDuration(period)
				if err != nil {
					return usageErrorf("%v", err)
				}
				period = d.String()
			}
			return g.withRepo(ctx, exclusiveLock, func(r *repo.Repository) error {
				if err := r.SetMinRetention(ctx, period); err != nil {
					return err
				}
				if g.Quiet && !g.JSON {
					return nil
				}
				return printRepoSettings(g, r.Config())
			})
		},
	}
}

func newConfigCompressionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "compression [auto|max|off]",
		Short: "Show or set how backups compress new data by default",
		Long: `Show or set the repository's default compression: auto (zstd's default
level, kept when it makes a blob smaller), max (a stronger level: about 1.5x
the compression time for 5 to 10% less stored on typical files) or off.
'bunker backup --compression' chooses otherwise for one backup. Data
already stored keeps its compression; every reader reads every mode.

Setting it takes the exclusive lock, rewrites the repository config and
prints the new settings (nothing with --quiet).` + repoSettingsHelp + repoExitStatus(),
		Example: `  bunker config compression
  bunker config compression max`,
		Args: rangeArgs(0, 1, "MODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 0 {
				return g.withRepo(ctx, noLock, func(r *repo.Repository) error {
					return printRepoSettings(g, r.Config())
				})
			}
			mode := args[0]
			if err := repo.ValidCompression(mode); err != nil {
				return usageErrorf("%v", err)
			}
			return g.withRepo(ctx, exclusiveLock, func(r *repo.Repository) error {
				if err := r.SetCompression(ctx, mode); err != nil {
					return err
				}
				if g.Quiet && !g.JSON {
					return nil
				}
				return printRepoSettings(g, r.Config())
			})
		},
	}
}

func printRepoSettings(g *globalOptions, c repo.Config) error {
	doc := repoSettingsJSON{ID: c.ID, Version: c.Version, Compression: c.Compression}
	if c.MinRetention != "" {
		doc.MinRetention = &c.MinRetention
	}
	return g.out.document(doc, func(w io.Writer) error {
		mr := c.MinRetention
		if mr == "" {
			mr = "none"
		}
		_, err := fmt.Fprintf(w, "repository %s (format %d)\ncompression: %s\nminimum retention: %s\n", shortStr(c.ID), c.Version, c.Compression, mr)
		return err
	})
}

// newRepoConfigCmd is 'bunker config': without a subcommand it shows the
// repository settings.
func newRepoConfigCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change repository settings",
		Long: `Show the repository settings, or change one with a subcommand
(min-retention, compression).` + repoSettingsHelp + repoExitStatus(),
		Example: `  bunker config
  bunker config --json
  bunker config min-retention 30d
  bunker config compression max`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), noLock, func(r *repo.Repository) error {
				return printRepoSettings(g, r.Config())
			})
		},
	}
	cmd.AddCommand(newConfigMinRetentionCmd(g), newConfigCompressionCmd(g), newConfigExampleCmd(g))
	return cmd
}
