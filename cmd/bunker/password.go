package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/term"
)

// errNoPassword says no password source was available.
var errNoPassword = errors.New("no password given")

// readPassword returns the repository password. The sources are the
// password file, the password command and BUNKER_PASSWORD; the one set at
// the highest level wins (flag > environment > config file), whatever its
// kind. The file and the command set at the same level are a usage error;
// BUNKER_PASSWORD yields to a file or command named in the environment.
// Without any source, a terminal is asked. A password is never taken from a
// flag.
func (g *globalOptions) readPassword(prompt string) (string, error) {
	fileLevel, cmdLevel := g.level("password-file", g.PasswordFile), g.level("password-command", g.PasswordCommand)
	envLevel := 0
	if g.passwordFromEnv != "" {
		envLevel = levelEnv
	}
	top := max(fileLevel, cmdLevel, envLevel)
	switch {
	case top == 0:
	case fileLevel == top && cmdLevel == top:
		return "", usageErrorf("--password-file and --password-command are mutually exclusive (both given by %s and %s)", g.source("password-file"), g.source("password-command"))
	case fileLevel == top:
		b, err := os.ReadFile(g.PasswordFile)
		if err != nil {
			return "", withHint(fmt.Errorf("read password file: %w", err), "check %s", g.source("password-file"))
		}
		return nonEmpty(strings.TrimRight(firstLine(string(b)), "\r"), "password file "+g.PasswordFile)
	case cmdLevel == top:
		return g.runPasswordCommand()
	default:
		return g.passwordFromEnv, nil
	}
	if !isTerminal(g.stdin) {
		return "", withHint(errNoPassword, "give one with --password-file, --password-command or BUNKER_PASSWORD, or run on a terminal to be asked")
	}
	return g.prompt(prompt)
}

// Levels of a setting's source; a higher level wins.
const (
	levelConfig = 1
	levelEnv    = 2
	levelFlag   = 3
)

// level returns the level of the source that set key to value (0: unset).
func (g *globalOptions) level(key, value string) int {
	if value == "" {
		return 0
	}
	src := g.source(key)
	switch {
	case strings.HasPrefix(src, "flag"):
		return levelFlag
	case strings.HasPrefix(src, "environment"):
		return levelEnv
	case src == "" && g.v == nil:
		return levelFlag // set directly, without resolve (tests)
	}
	return levelConfig
}

// readNewPassword asks twice on a terminal (for init and key add/passwd);
// other sources are read once.
func (g *globalOptions) readNewPassword(prompt string) (string, error) {
	if g.PasswordFile != "" || g.PasswordCommand != "" || g.passwordFromEnv != "" || !isTerminal(g.stdin) {
		return g.readPassword(prompt)
	}
	pw, err := g.prompt(prompt)
	if err != nil {
		return "", err
	}
	again, err := g.prompt("enter the password again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords do not match")
	}
	return pw, nil
}

// readNewKeyPassword reads the password for a new key (key add, key passwd):
// from --new-password-file when given, else from a terminal prompt (twice).
func (g *globalOptions) readNewKeyPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read new password file: %w", err)
		}
		return nonEmpty(strings.TrimRight(firstLine(string(b)), "\r"), "new password file "+file)
	}
	if !isTerminal(g.stdin) {
		return "", usageErrorf("no new password: give --new-password-file, or run on a terminal to be asked")
	}
	pw, err := g.prompt("enter the new password: ")
	if err != nil {
		return "", err
	}
	again, err := g.prompt("enter the new password again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords do not match")
	}
	return nonEmpty(pw, "the new password")
}

func (g *globalOptions) prompt(prompt string) (string, error) {
	f := g.stdin.(*os.File)
	fmt.Fprint(g.stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return nonEmpty(string(b), "the password")
}

func (g *globalOptions) runPasswordCommand() (string, error) {
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(g.ctx, "cmd", "/C", g.PasswordCommand)
	} else {
		cmd = exec.CommandContext(g.ctx, "/bin/sh", "-c", g.PasswordCommand)
	}
	// When interrupted, the shell is killed; its children may hold the
	// output pipe open, so do not wait for them long.
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = g.stderr
	cmd.Stdin = g.stdin
	if err := cmd.Run(); err != nil {
		return "", withHint(fmt.Errorf("password command %q: %w", g.PasswordCommand, err), "check --password-command or BUNKER_PASSWORD_COMMAND")
	}
	return nonEmpty(strings.TrimRight(firstLine(out.String()), "\r"), "output of the password command")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func nonEmpty(pw, what string) (string, error) {
	if pw == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	return pw, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
