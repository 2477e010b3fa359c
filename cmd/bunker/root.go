package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/bunkerbackup/bunker/repo"
)

// globalOptions holds the global flags after flag > environment > config
// file > default resolution, and the streams of this invocation.
type globalOptions struct {
	Repo            string
	PasswordFile    string
	PasswordCommand string
	ConfigFile      string
	CacheDir        string
	JSON            bool
	Quiet           bool
	Verbose         int
	NoProgress      bool
	NoLock          bool          // read-only commands take no lock
	RetryLock       time.Duration // wait this long for a conflicting lock

	// command is the command being run (set before it runs).
	command *cobra.Command
	// runSnapshot, runBytes and runDuration describe what the command
	// wrote or read, for its history record (set by backup and drill; a
	// zero runDuration records the command's whole time).
	runSnapshot string
	runBytes    int64
	runDuration time.Duration
	// opened is the first repository the command opened, where its
	// history record is stored too.
	opened *repo.Repository

	// passwordFromEnv is BUNKER_PASSWORD, read once at start.
	passwordFromEnv string

	ctx    context.Context // cancelled by SIGINT and SIGTERM
	v      *viper.Viper
	flags  *pflag.FlagSet
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	out    *printer
}

// settings maps viper keys (also the config file's keys) to the global flag
// and environment variable that set them.
var settings = []struct{ key, flag, env string }{
	{"repository", "repo", "BUNKER_REPOSITORY"},
	{"password-file", "password-file", "BUNKER_PASSWORD_FILE"},
	{"password-command", "password-command", "BUNKER_PASSWORD_COMMAND"},
	{"cache-dir", "cache-dir", "BUNKER_CACHE_DIR"},
}

// run executes one bunker invocation and returns its exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal cancels ctx so that the command stops cleanly
	// (nothing half-written is referenced); a second one kills at once.
	go func() {
		<-ctx.Done()
		stop()
	}()

	g := &globalOptions{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	g.out = &printer{g: g}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	start := time.Now()
	err := root.ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		// Interrupted: whatever failed, the cause is the signal.
		err = fmt.Errorf("%w: %v", context.Canceled, err)
	}
	g.recordCommand(ctx, start, err)
	return g.out.exit(err)
}

func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "bunker",
		Short: "Back up VM disk images and file trees into an encrypted, deduplicated repository",
		Long: `bunker backs up VM disk images (VMDK, VHD, VHDX, qcow2, raw, block devices) and
file trees into an encrypted, deduplicated, file-based repository, and restores
whole disks, single partitions and files.

The repository and password come from flags, environment variables
(BUNKER_REPOSITORY, BUNKER_PASSWORD, BUNKER_PASSWORD_FILE,
BUNKER_PASSWORD_COMMAND, BUNKER_CONFIG, BUNKER_CACHE_DIR) or the config file,
in that order of precedence.` + repoExitStatus(helpPartial),
		Example: `  bunker init -r /srv/backup
  bunker backup -r /srv/backup --tag nightly /etc /home
  bunker backup -r /srv/backup --disk /var/lib/libvirt/images/vm1.qcow2
  bunker snapshots -r /srv/backup`,
		Version:           programVersion(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.command = cmd
			return g.resolve()
		},
	}
	root.SetVersionTemplate("bunker {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })

	f := root.PersistentFlags()
	f.StringVarP(&g.Repo, "repo", "r", "", "repository `location` (a directory) (env BUNKER_REPOSITORY)")
	f.StringVar(&g.PasswordFile, "password-file", "", "read the repository password from `file` (env BUNKER_PASSWORD_FILE)")
	f.StringVar(&g.PasswordCommand, "password-command", "", "run `command` and read the password from its output (env BUNKER_PASSWORD_COMMAND)")
	f.StringVar(&g.ConfigFile, "config", "", "config `file` (env BUNKER_CONFIG; default $XDG_CONFIG_HOME/bunker/config.yaml, then /etc/bunker/config.yaml)")
	f.BoolVar(&g.JSON, "json", false, "print JSON instead of text")
	f.BoolVarP(&g.Quiet, "quiet", "q", false, "no progress or informational messages (listings, warnings and errors still print)")
	f.CountVarP(&g.Verbose, "verbose", "v", "print more (repeat for even more)")
	f.BoolVar(&g.NoProgress, "no-progress", false, "never show a progress bar")
	f.StringVar(&g.CacheDir, "cache-dir", "", "cache `directory` for remote repositories; local ones read their own files and need none (env BUNKER_CACHE_DIR)")
	f.BoolVar(&g.NoLock, "no-lock", false, "do not lock the repository for commands that only read (snapshots, ls, find, dump, restore, diff, check, stats, volumes); for read-only media")
	f.DurationVar(&g.RetryLock, "retry-lock", 0, "wait up to `duration` (e.g. 10m) for a lock held by another process instead of exiting with 11")
	g.flags = f

	root.AddCommand(
		newInitCmd(g),
		newKeyCmd(g),
		newBackupCmd(g),
		newSnapshotsCmd(g),
		newLsCmd(g),
		newFindCmd(g),
		newVolumesCmd(g),
		newDumpCmd(g),
		newRestoreCmd(g),
		newDiffCmd(g),
		newCheckCmd(g),
		newStatsCmd(g),
		newForgetCmd(g),
		newPruneCmd(g),
		newRepairCmd(g),
		newProtectCmd(g),
		newUnprotectCmd(g),
		newTagCmd(g),
		newRepoConfigCmd(g),
		newJobCmd(g),
		newScheduleCmd(g),
		newHistoryCmd(g),
		newStatusCmd(g),
		newUnlockCmd(g),
		newVersionCmd(g),
		newGenerateCmd(g),
		newDrillCmd(g),
		newCopyCmd(g),
	)
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	decorate(root)
	return root
}

// decorate gives the commands cobra adds (completion, help) the exit status
// section and examples every bunker command has.
func decorate(c *cobra.Command) {
	c.DisableAutoGenTag = true
	if !strings.Contains(c.Long, "EXIT STATUS") {
		if c.Long == "" {
			c.Long = c.Short
		}
		c.Long = strings.TrimRight(c.Long, "\n") + exitStatusHelp()
	}
	if c.Example == "" {
		switch {
		case c.Name() == "completion":
			c.Example = "  bunker completion bash > /etc/bash_completion.d/bunker\n  bunker completion zsh > \"${fpath[1]}/_bunker\""
		case c.HasParent() && c.Parent().Name() == "completion":
			c.Example = completionExamples[c.Name()]
		case c.Name() == "help":
			c.Example = "  bunker help backup"
		}
	}
	if c.Name() == "completion" && c.Run == nil && c.RunE == nil {
		// "bunker completion nosh" is a usage error, not help and exit 0.
		c.Args = cobra.NoArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			return usageErrorf("name a shell: bunker completion bash|zsh|fish|powershell")
		}
	}
	for _, sub := range c.Commands() {
		decorate(sub)
	}
}

// completionExamples shows how to install each shell's completion.
var completionExamples = map[string]string{
	"bash":       "  bunker completion bash > /etc/bash_completion.d/bunker\n  source <(bunker completion bash)",
	"zsh":        "  bunker completion zsh > \"${fpath[1]}/_bunker\"",
	"fish":       "  bunker completion fish > ~/.config/fish/completions/bunker.fish",
	"powershell": "  bunker completion powershell | Out-String | Invoke-Expression",
}

// exitStatusHelp is appended to every command's Long help.
func exitStatusHelp(extra ...string) string {
	var b strings.Builder
	b.WriteString("\n\nEXIT STATUS\n")
	b.WriteString("  0    success\n")
	b.WriteString("  1    fatal error\n")
	b.WriteString("  2    usage error (bad flags or arguments)\n")
	for _, e := range extra {
		b.WriteString("  " + e + "\n")
	}
	b.WriteString("  130  interrupted (SIGINT or SIGTERM)")
	return b.String()
}

// Exit status lines shared by the commands that use a repository.
var (
	helpPartial  = "3    snapshot written, but some sources could not be read"
	helpNoRepo   = "10   repository does not exist"
	helpLocked   = "11   repository is locked"
	helpPassword = "12   wrong password"
)

// repoExitStatus is the exit status help of commands that open a repository.
func repoExitStatus(extra ...string) string {
	return exitStatusHelp(append(extra, helpNoRepo, helpLocked, helpPassword)...)
}
