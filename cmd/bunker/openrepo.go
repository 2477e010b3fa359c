package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"

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
	return local.New(loc), nil
}

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
	return r, nil
}

// lockMode is the lock a command holds on the repository while it runs.
type lockMode int

const (
	noLock        lockMode = iota // key management, unlock
	sharedLock                    // backup, restore, check and the read-only commands
	exclusiveLock                 // commands that delete data
)

// withRepo opens the repository, takes the lock, runs fn and releases
// everything.
func (g *globalOptions) withRepo(ctx context.Context, lock lockMode, fn func(r *repo.Repository) error) (err error) {
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
		l, err := r.Lock(ctx, lock == exclusiveLock)
		if err != nil {
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

// whoami returns the host and user names recorded in snapshots and keys.
func whoami() (host, username string) {
	host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		username = u.Username
	}
	return host, username
}
