package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newGenerateCmd(g *globalOptions) *cobra.Command {
	var manDir string
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate man pages",
		Long: `Write a man page for every command into a directory. The pages carry a fixed
date (SOURCE_DATE_EPOCH when set) so that builds are reproducible.
Shell completions come from 'bunker completion SHELL'.` + exitStatusHelp(),
		Example: `  bunker generate --man /usr/local/share/man/man1
  bunker completion bash > /etc/bash_completion.d/bunker`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if manDir == "" {
				return usageErrorf("nothing to generate: give --man DIR")
			}
			if err := os.MkdirAll(manDir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", manDir, err)
			}
			date := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
				sec, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
				}
				date = time.Unix(sec, 0).UTC()
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{Title: "BUNKER", Section: "1", Date: &date, Source: "bunker " + programVersion(), Manual: "bunker manual"}
			if err := doc.GenManTree(root, header, manDir); err != nil {
				return fmt.Errorf("write man pages to %s: %w", manDir, err)
			}
			g.out.printf("wrote man pages to %s\n", manDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&manDir, "man", "", "write man pages to `directory`")
	return cmd
}
