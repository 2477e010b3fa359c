package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

func newKeyCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the passwords of a repository",
		Long: `Every password of a repository opens a key file that wraps the same master
key. 'key add' adds a password, 'key remove' removes one, 'key passwd'
replaces the password in use, 'key list' shows them all.` + repoExitStatus(),
		Example: `  bunker key list -r /srv/backup
  bunker key add -r /srv/backup --new-password-file /root/second-password`,
		Args: noArgs,
	}
	var newPasswordFile string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a password",
		Long:  "Add a new password (key file) to the repository. The new password comes from\n--new-password-file, or is asked for twice on a terminal." + repoExitStatus(),
		Example: `  bunker key add -r /srv/backup
  bunker key add -r /srv/backup --new-password-file /root/new-password`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), noLock, func(r *repo.Repository) error {
				pw, err := g.readNewKeyPassword(newPasswordFile)
				if err != nil {
					return err
				}
				host, user := whoami()
				id, err := r.AddKey(cmd.Context(), pw, host, user)
				if err != nil {
					return err
				}
				return g.reportKey("added", id)
			})
		},
	}
	add.Flags().StringVar(&newPasswordFile, "new-password-file", "", "read the new password from `file`")

	passwd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password in use",
		Long:  "Replace the key file opened by the current password with one for a new password." + repoExitStatus(),
		Example: `  bunker key passwd -r /srv/backup
  bunker key passwd -r /srv/backup --new-password-file /root/new-password`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), noLock, func(r *repo.Repository) error {
				pw, err := g.readNewKeyPassword(newPasswordFile)
				if err != nil {
					return err
				}
				id, err := r.ChangePassword(cmd.Context(), pw)
				if err != nil {
					return err
				}
				return g.reportKey("changed", id)
			})
		},
	}
	passwd.Flags().StringVar(&newPasswordFile, "new-password-file", "", "read the new password from `file`")

	remove := &cobra.Command{
		Use:     "remove ID",
		Short:   "Remove a password",
		Long:    "Remove the key file with the given id (prefix). The key in use and the last key\ncannot be removed." + repoExitStatus(),
		Example: `  bunker key remove -r /srv/backup 5c1e9a3f`,
		Args:    exactArgs(1, "one key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), noLock, func(r *repo.Repository) error {
				keys, err := r.Keys(cmd.Context())
				if err != nil {
					return err
				}
				var match []repo.KeyInfo
				for _, k := range keys {
					if len(args[0]) <= len(k.ID.String()) && k.ID.String()[:len(args[0])] == args[0] {
						match = append(match, k)
					}
				}
				switch {
				case len(match) == 0:
					return withHint(fmt.Errorf("no key with id %s", args[0]), "list the keys with 'bunker key list'")
				case len(match) > 1:
					return usageErrorf("key id prefix %s is ambiguous (%d keys)", args[0], len(match))
				}
				if err := r.RemoveKey(cmd.Context(), match[0].ID); err != nil {
					return err
				}
				return g.reportKey("removed", match[0].ID)
			})
		},
	}

	list := &cobra.Command{
		Use:     "list",
		Short:   "List the passwords (key files)",
		Long:    "List the key files of the repository; the one opened by the current password\nis marked with *." + repoExitStatus(),
		Example: "  bunker key list -r /srv/backup\n  bunker key list -r /srv/backup --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRepo(cmd.Context(), noLock, func(r *repo.Repository) error {
				keys, err := r.Keys(cmd.Context())
				if err != nil {
					return err
				}
				docs := make([]keyJSON, 0, len(keys))
				for _, k := range keys {
					docs = append(docs, keyJSON{ID: k.ID.String(), Current: k.Current, Username: k.Username, Hostname: k.Hostname, Created: k.Created,
						KDF: fmt.Sprintf("argon2id t=%d m=%dKiB p=%d", k.KDF.Time, k.KDF.Memory, k.KDF.Threads)})
				}
				return g.out.document(docs, func(w io.Writer) error {
					var rows [][]string
					for _, k := range keys {
						cur := " "
						if k.Current {
							cur = "*"
						}
						rows = append(rows, []string{cur + k.ID.Str(), k.Username, k.Hostname, k.Created.Local().Format(time.DateTime)})
					}
					return table(w, []string{" ID", "User", "Host", "Created"}, rows)
				})
			})
		},
	}
	cmd.AddCommand(list, add, remove, passwd)
	return cmd
}

// keyJSON is a key as 'key list --json' prints it.
type keyJSON struct {
	ID       string    `json:"id"`
	Current  bool      `json:"current"`
	Username string    `json:"username"`
	Hostname string    `json:"hostname"`
	Created  time.Time `json:"created"`
	KDF      string    `json:"kdf"`
}

func (g *globalOptions) reportKey(what string, id repo.ID) error {
	if g.JSON {
		g.out.jsonLine(map[string]string{"message_type": "key_" + what, "id": id.String()})
		return nil
	}
	g.out.printf("%s key %s\n", what, id.Str())
	return nil
}
