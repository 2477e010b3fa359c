package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
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
	return fmt.Sprintf("snapshot %s saved, but %d source(s) could not be read", e.snapshot.Str(), e.failed)
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
// standard ones for well-known errors.
func hints(err error) []string {
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
	case errors.Is(err, vmdisk.ErrInUse):
		out = append(out, "back up a frozen copy (an LVM, libvirt or ZFS snapshot: see docs/consistent-snapshots.md), or add --force for a crash-consistent copy")
	case errors.Is(err, vmdisk.ErrUnsupported):
		out = append(out, "convert the image with 'qemu-img convert -O raw' (or vmdk, vhd) and back up the result")
	case errors.Is(err, vmdisk.ErrUnknownFormat):
		out = append(out, "name the format with --format (raw, vmdk, vhd, vhdx, qcow2)")
	case errors.Is(err, repo.ErrNewerFormat):
		out = append(out, "upgrade bunker")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		out = append(out, "free space where the repository lives (or run 'bunker forget --prune'); nothing half-written is referenced, earlier snapshots are intact")
	case errors.Is(err, syscall.EROFS):
		out = append(out, "the repository's file system is mounted read-only: remount it read-write, or use commands that only read (snapshots, ls, restore, check)")
	}
	return out
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
	fmt.Fprintf(p.g.stderr, "bunker: error: %s\n", msg)
	for _, h := range hints(err) {
		fmt.Fprintf(p.g.stderr, "bunker: hint: %s\n", h)
	}
	if p.g.JSON {
		p.jsonTo(p.g.stderr, struct {
			MessageType string `json:"message_type"`
			Code        int    `json:"code"`
			Message     string `json:"message"`
		}{"exit_error", code, msg})
	}
	return code
}
