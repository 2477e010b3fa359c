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
	r, err := repo.Open(ctx, be, pw)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", be.Location(), err)
	}
	g.out.verbosef(1, "opened repository %s", be.Location())
	return r, nil
}

// withRepo opens the repository, takes a lock (shared or exclusive, or none
// when lock is nil), runs fn and releases everything.
func (g *globalOptions) withRepo(ctx context.Context, exclusive *bool, fn func(r *repo.Repository) error) (err error) {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if exclusive != nil {
		l, err := r.Lock(ctx, *exclusive)
		if err != nil {
			return err
		}
		defer l.Unlock()
	}
	return fn(r)
}

var (
	sharedLock    = new(bool)
	exclusiveLock = func() *bool { b := true; return &b }()
	noLock        *bool
)

// whoami returns the host and user names recorded in snapshots and keys.
func whoami() (host, username string) {
	host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		username = u.Username
	}
	return host, username
}
