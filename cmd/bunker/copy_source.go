package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/local"
)

// copySource names the repository snapshots are copied from and how to get
// its password. Flags beat the BUNKER_FROM_* environment variables; a
// password is never taken from a flag.
type copySource struct {
	repo            string // --from-repo, BUNKER_FROM_REPOSITORY
	passwordFile    string // --from-password-file, BUNKER_FROM_PASSWORD_FILE
	passwordCommand string // --from-password-command, BUNKER_FROM_PASSWORD_COMMAND
}

func (s *copySource) resolveEnv() {
	for _, v := range []struct {
		dst *string
		env string
	}{{&s.repo, "BUNKER_FROM_REPOSITORY"}, {&s.passwordFile, "BUNKER_FROM_PASSWORD_FILE"}, {&s.passwordCommand, "BUNKER_FROM_PASSWORD_COMMAND"}} {
		if *v.dst == "" {
			*v.dst = os.Getenv(v.env)
		}
	}
}

// open opens the source repository with its password: from the password
// file, the password command, BUNKER_FROM_PASSWORD, or a terminal prompt.
func (s *copySource) open(ctx context.Context, g *globalOptions) (*repo.Repository, error) {
	loc := strings.TrimPrefix(s.repo, "local:")
	if loc == "" {
		return nil, usageErrorf("copy needs the source repository: --from-repo or BUNKER_FROM_REPOSITORY")
	}
	if i := strings.Index(loc, "://"); i > 0 {
		return nil, fmt.Errorf("source repository %s: this bunker reads only local directories, not %s:// URLs", loc, loc[:i])
	}
	be := local.New(loc)
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open source repository %s: %w", be.Location(), repo.ErrNoRepository)
	}
	pw, err := s.password(g, be.Location())
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, be, pw)
	if errors.Is(err, repo.ErrWrongPassword) {
		return nil, withHint(fmt.Errorf("open source repository: %w", err), "check --from-password-file, --from-password-command or BUNKER_FROM_PASSWORD")
	}
	if err != nil {
		return nil, fmt.Errorf("open source repository: %w", err)
	}
	g.out.verbosef(1, "opened source repository %s", be.Location())
	return r, nil
}

func (s *copySource) password(g *globalOptions, loc string) (string, error) {
	switch {
	case s.passwordFile != "" && s.passwordCommand != "":
		return "", usageErrorf("--from-password-file and --from-password-command are mutually exclusive (check the flags and environment)")
	case s.passwordFile != "":
		b, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return "", withHint(fmt.Errorf("read source password file: %w", err), "check --from-password-file or BUNKER_FROM_PASSWORD_FILE")
		}
		return nonEmpty(strings.TrimRight(firstLine(string(b)), "\r"), "source password file "+s.passwordFile)
	case s.passwordCommand != "":
		return s.runCommand(g)
	case os.Getenv("BUNKER_FROM_PASSWORD") != "":
		return os.Getenv("BUNKER_FROM_PASSWORD"), nil
	case isTerminal(g.stdin):
		return g.prompt("enter the password for source repository " + loc + ": ")
	}
	return "", withHint(errors.New("no password given for the source repository"),
		"give one with --from-password-file, --from-password-command or BUNKER_FROM_PASSWORD, or run on a terminal to be asked")
}

func (s *copySource) runCommand(g *globalOptions) (string, error) {
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(g.ctx, "cmd", "/C", s.passwordCommand)
	} else {
		cmd = exec.CommandContext(g.ctx, "/bin/sh", "-c", s.passwordCommand)
	}
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, g.stderr, g.stdin
	if err := cmd.Run(); err != nil {
		return "", withHint(fmt.Errorf("source password command %q: %w", s.passwordCommand, err), "check --from-password-command or BUNKER_FROM_PASSWORD_COMMAND")
	}
	return nonEmpty(strings.TrimRight(firstLine(out.String()), "\r"), "output of the source password command")
}
