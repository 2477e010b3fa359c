package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"syscall"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/local"
)

// backend returns the storage named by --repo.
func (g *globalOptions) backend() (backend.Backend, error) {
	loc := g.Repo
	if loc == "" {
		return nil, usageErrorf("no repository given: use --repo or BUNKER_REPOSITORY, or set 'repository' in the config file")
	}
	if i := strings.Index(loc, "://"); i > 0 {
		return nil, fmt.Errorf("repository %s: this bunker reads only local directories, not %s:// URLs", loc, loc[:i])
	}
	loc = strings.TrimPrefix(loc, "local:")
	var be backend.Backend = local.New(loc)
	if wrapBackend != nil {
		be = wrapBackend(be)
	}
	return be, nil
}

// wrapBackend, when set (by tests), wraps every backend the commands open.
var wrapBackend func(backend.Backend) backend.Backend

// openRepo opens the repository with the password from the usual sources.
// A missing repository is reported before a password is asked for.
func (g *globalOptions) openRepo(ctx context.Context) (*repo.Repository, error) {
	be, err := g.backend()
	if err != nil {
		return nil, err
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), repo.ErrNoRepository)
	}
	pw, err := g.readPassword("enter the password for repository " + be.Location() + ": ")
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, be, pw) // its errors name the location
	if err != nil {
		return nil, err
	}
	g.out.verbosef(1, "opened repository %s", be.Location())
	if g.opened == nil {
		g.opened = r
	}
	return r, nil
}

// lockMode is the lock a command holds on the repository while it runs.
type lockMode int

const (
	noLock        lockMode = iota // key management, unlock
	sharedLock                    // backup, restore, check and the read-only commands
	exclusiveLock                 // commands that delete data
)

// readOnlyCommands only read the repository: --no-lock applies to them, and
// when their lock cannot be written (read-only media) they run without one.
var readOnlyCommands = map[string]bool{
	"snapshots": true, "ls": true, "dump": true, "restore": true,
	"diff": true, "check": true, "stats": true, "volumes": true, "find": true,
}

// readOnly reports whether the running command only reads the repository.
func (g *globalOptions) readOnly() bool {
	c := g.command
	return c != nil && c.HasParent() && !c.Parent().HasParent() && readOnlyCommands[c.Name()]
}

// withRepo opens the repository, takes the lock (retried for --retry-lock
// while another process holds a conflicting one), runs fn and releases
// everything. A read-only command takes no lock with --no-lock, and runs
// without one, with a warning, when the lock cannot be written.
func (g *globalOptions) withRepo(ctx context.Context, lock lockMode, fn func(r *repo.Repository) error) (err error) {
	if lock == sharedLock && g.readOnly() && g.NoLock {
		lock = noLock
	} else if g.NoLock && lock != noLock && g.command != nil {
		g.out.warn("lock", "", fmt.Errorf("--no-lock is ignored: '%s' changes the repository and must lock it", g.command.CommandPath()))
	}
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if lock != noLock {
		l, err := g.lock(ctx, r, lock == exclusiveLock)
		if err != nil {
			if lock == sharedLock && g.readOnly() && lockNotWritable(err) {
				var errno syscall.Errno
				errors.As(err, &errno)
				g.out.warn("lock", "", fmt.Errorf("cannot write a lock in %s (%w): reading the repository without one", r.Backend().Location(), errno))
				return fn(r)
			}
			return err
		}
		defer func() {
			if lerr := l.Err(); lerr != nil {
				g.out.warn("lock", "", fmt.Errorf("refresh the repository lock: %w", lerr))
			}
			if uerr := l.Unlock(); uerr != nil {
				g.out.warn("lock", "", fmt.Errorf("remove the repository lock: %w (run 'bunker unlock' later)", uerr))
			}
		}()
	}
	return fn(r)
}

// lock takes the repository lock, retrying for up to --retry-lock while
// another process holds a conflicting one.
func (g *globalOptions) lock(ctx context.Context, r *repo.Repository, exclusive bool) (*repo.Lock, error) {
	deadline := time.Now().Add(g.RetryLock)
	for {
		l, err := r.Lock(ctx, exclusive)
		var locked *repo.LockedError
		if err == nil || !errors.As(err, &locked) || !time.Now().Before(deadline) {
			return l, err
		}
		g.out.verbosef(1, "repository is locked, retrying: %v", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(5*time.Second, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// lockNotWritable reports whether a lock failed because the repository
// cannot be written (a read-only mount, WORM media, no write permission).
func lockNotWritable(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// whoami returns the host and user names recorded in snapshots and keys.
func whoami() (host, username string) {
	host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		username = u.Username
	}
	return host, username
}
