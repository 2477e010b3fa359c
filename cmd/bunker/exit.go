package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/raw"
)

// Exit codes (PRODUCT.md). Scripts must treat any code not listed as failure.
const (
	exitOK          = 0
	exitFatal       = 1
	exitUsage       = 2
	exitIncomplete  = 3
	exitNoRepo      = 10
	exitLockedRepo  = 11
	exitBadPassword = 12
	exitInterrupted = 130
)

// usageError is a mistake in flags or arguments; it exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// incompleteError reports a snapshot that was written although some sources
// could not be read; it exits with 3.
type incompleteError struct {
	snapshot repo.ID
	failed   int
}

func (e *incompleteError) Error() string {
	return fmt.Sprintf("snapshot %s saved, but %s could not be read", e.snapshot.Str(), count(e.failed, "source"))
}

// hintError adds advice printed on a "bunker: hint:" line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

// exitCode maps an error to the process exit code. It is the only place
// that does.
func exitCode(err error) int {
	var (
		usage      *usageError
		incomplete *incompleteError
		locked     *repo.LockedError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &usage), isCobraUsageError(err):
		return exitUsage
	case errors.Is(err, repo.ErrNoRepository):
		return exitNoRepo
	case errors.As(err, &locked):
		return exitLockedRepo
	case errors.Is(err, repo.ErrWrongPassword):
		return exitBadPassword
	case errors.As(err, &incomplete):
		return exitIncomplete
	}
	return exitFatal
}

// isCobraUsageError recognises the usage errors cobra returns as plain
// errors (flag errors already arrive as usageError via SetFlagErrorFunc).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "required flag", "if any flags in the group", "none of the others can be", "at least one of the flags"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// hints returns the advice for an error: explicit hints first, then the
// standard ones for well-known errors, worded for the command that failed
// and for where the failing path lies (in the repository or not).
func (g *globalOptions) hints(err error) []string {
	var out []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(*hintError); ok {
			out = append(out, h.hint)
		}
	}
	var usage *usageError
	switch {
	case errors.As(err, &usage), isCobraUsageError(err):
		out = append(out, "run 'bunker help' or 'bunker COMMAND --help' for usage")
	case errors.Is(err, repo.ErrNoRepository):
		out = append(out, "check --repo (or BUNKER_REPOSITORY), or create a repository with 'bunker init'")
	case errors.Is(err, repo.ErrWrongPassword):
		out = append(out, "check --password-file, --password-command or BUNKER_PASSWORD")
	case errors.Is(err, raw.ErrDeviceBusy) || ((errors.Is(err, vmdisk.ErrInUse) || errors.Is(err, syscall.EBUSY)) && g.writesTarget()):
		out = append(out, "the target is mounted or in use: unmount it (and stop what holds it), or pick another target")
	case errors.Is(err, vmdisk.ErrInUse):
		out = append(out, "back up a frozen copy (an LVM, libvirt or ZFS snapshot of the VM), or add --force for a crash-consistent copy")
	case errors.Is(err, vmdisk.ErrUnsupported):
		out = append(out, "convert the image with 'qemu-img convert -O raw' (or vmdk, vhd) and back up the result")
	case errors.Is(err, vmdisk.ErrUnknownFormat):
		out = append(out, "name the format with --format (raw, vmdk, vhd, vhdx, qcow2)")
	case errors.Is(err, repo.ErrNewerFormat):
		out = append(out, "upgrade bunker")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		switch where := g.failedPath(err); where {
		case inRepository:
			out = append(out, "free space where the repository lives (or run 'bunker forget --prune'); nothing half-written is referenced, earlier snapshots are intact")
		case onStdout:
			out = append(out, "the output is full: write it somewhere with more space")
		default:
			out = append(out, "free space on the file system of the target, or pick another target")
		}
	case errors.Is(err, syscall.EROFS):
		if g.failedPath(err) == inRepository {
			out = append(out, "the repository's file system is mounted read-only: remount it read-write; commands that only read (snapshots, ls, dump, restore, diff, check, stats, volumes) run there without a lock (or pass --no-lock)")
		} else {
			out = append(out, "the target is on a read-only file system: remount it read-write, or pick another target")
		}
	}
	return out
}

// Where a failing path lies.
const (
	inRepository = iota
	onStdout
	elsewhere
)

// failedPath says where the path of the first path error in err lies. An
// error without a path is blamed on stdout for dump, on the target for
// commands that write one, else on the repository.
func (g *globalOptions) failedPath(err error) int {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		switch {
		case g.command != nil && g.command.Name() == "dump":
			return onStdout
		case g.writesTarget():
			return elsewhere
		}
		return inRepository
	}
	switch pe.Path {
	case "/dev/stdout", "/dev/stderr", "/dev/fd/1":
		return onStdout
	}
	if g.Repo == "" {
		return elsewhere
	}
	repoDir, err1 := filepath.Abs(strings.TrimPrefix(g.Repo, "local:"))
	p, err2 := filepath.Abs(pe.Path)
	if err1 != nil || err2 != nil {
		return elsewhere
	}
	if rel, err := filepath.Rel(repoDir, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return inRepository
	}
	return elsewhere
}

// writesTarget reports whether the running command writes outside the
// repository (a restore target, a drill's scratch space).
func (g *globalOptions) writesTarget() bool {
	if g.command == nil {
		return false
	}
	switch g.command.Name() {
	case "restore", "drill":
		return true
	}
	return false
}

// exit prints err (if any) and returns the exit code.
func (p *printer) exit(err error) int {
	code := exitCode(err)
	if err == nil {
		return code
	}
	msg := err.Error()
	if code == exitInterrupted {
		msg = "interrupted"
	}
	hs := p.g.hints(err)
	if p.g.JSON {
		// Only JSON on stderr under --json: scripts parse it line by line.
		p.jsonTo(p.g.stderr, struct {
			MessageType string   `json:"message_type"`
			Code        int      `json:"code"`
			Message     string   `json:"message"`
			Hints       []string `json:"hints,omitempty"`
		}{"exit_error", code, msg, hs})
		return code
	}
	fmt.Fprintf(p.g.stderr, "bunker: error: %s\n", msg)
	for _, h := range hs {
		fmt.Fprintf(p.g.stderr, "bunker: hint: %s\n", h)
	}
	return code
}
