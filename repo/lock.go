package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// Lock timing. Variables so tests can shorten them.
var (
	// LockRefreshInterval is how often a held lock is renewed.
	LockRefreshInterval = 5 * time.Minute
	// LockStaleAge is the age after which a lock that was not renewed is
	// stale.
	LockStaleAge = 30 * time.Minute
)

// LockInfo is the content of a lock file.
type LockInfo struct {
	Version   int       `json:"version"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	Username  string    `json:"username,omitempty"`
	PID       int       `json:"pid"`
	UID       uint32    `json:"uid"`

	ID ID `json:"-"` // the lock file
}

// Stale reports whether the lock is no longer held: not renewed for
// LockStaleAge, or held by a process of this host that no longer exists.
func (l *LockInfo) Stale() bool {
	if time.Since(l.Time) > LockStaleAge {
		return true
	}
	host, err := os.Hostname()
	if err == nil && host == l.Hostname && !processExists(l.PID) {
		return true
	}
	return false
}

func (l *LockInfo) String() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	who := "PID " + strconv.Itoa(l.PID) + " on " + l.Hostname
	if l.Username != "" {
		who += " by " + l.Username
	}
	return fmt.Sprintf("%s lock %s held by %s since %s", kind, l.ID.Str(), who, l.Time.Local().Format("2006-01-02 15:04:05"))
}

// LockedError is returned when the repository is locked by another process
// in a conflicting way.
type LockedError struct {
	Holder LockInfo
}

func (e *LockedError) Error() string {
	msg := "repository is already locked: " + e.Holder.String()
	if e.Holder.Stale() {
		msg += " (the lock is stale: run \"bunker unlock\" to remove it)"
	} else {
		msg += " (if that process no longer runs, \"bunker unlock\" removes stale locks)"
	}
	return msg
}

// Lock is a lock held on the repository. It is renewed in the background
// until Unlock.
type Lock struct {
	r         *Repository
	exclusive bool
	mu        sync.Mutex
	id        ID
	info      LockInfo
	stop      chan struct{}
	done      chan struct{}
	err       error // last refresh error
	refreshed time.Time
	once      sync.Once
}

func newLockInfo(exclusive bool) LockInfo {
	host, _ := os.Hostname()
	li := LockInfo{
		Version:   FormatVersion,
		Time:      time.Now().UTC(),
		Exclusive: exclusive,
		Hostname:  host,
		PID:       os.Getpid(),
		UID:       uint32(max(os.Getuid(), 0)),
	}
	if u, err := user.Current(); err == nil {
		li.Username = u.Username
	}
	return li
}

func (r *Repository) saveLock(ctx context.Context, li LockInfo) (ID, error) {
	b, err := json.Marshal(li)
	if err != nil {
		return ID{}, err
	}
	id, err := r.saveSealed(ctx, backend.LockFile, b)
	if err != nil {
		return ID{}, fmt.Errorf("save lock: %w", err)
	}
	return id, nil
}

// LoadLock loads one lock file.
func (r *Repository) LoadLock(ctx context.Context, id ID) (*LockInfo, error) {
	plain, err := r.loadSealed(ctx, backend.LockFile, id)
	if err != nil {
		return nil, fmt.Errorf("load lock %s: %w", id.Str(), err)
	}
	var li LockInfo
	if err := json.Unmarshal(plain, &li); err != nil {
		return nil, fmt.Errorf("load lock %s: %w", id.Str(), err)
	}
	if li.Version > FormatVersion {
		return nil, fmt.Errorf("load lock %s: %w", id.Str(), newerFormat("lock", li.Version))
	}
	li.ID = id
	return &li, nil
}

// Locks returns the lock files that can be read.
func (r *Repository) Locks(ctx context.Context) ([]*LockInfo, error) {
	ids, err := r.ListFiles(ctx, backend.LockFile)
	if err != nil {
		return nil, err
	}
	var out []*LockInfo
	for _, id := range ids {
		li, err := r.LoadLock(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, li)
	}
	return out, nil
}

// Lock takes a shared or exclusive lock. Shared locks coexist; an exclusive
// lock excludes every other lock. Stale locks are ignored. A conflict returns
// a *LockedError naming the holder.
func (r *Repository) Lock(ctx context.Context, exclusive bool) (*Lock, error) {
	li := newLockInfo(exclusive)
	id, err := r.saveLock(ctx, li)
	if err != nil {
		return nil, err
	}
	li.ID = id
	release := func() {
		_ = r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.LockFile, Name: id.String()})
	}
	if err := r.checkLocks(ctx, id, exclusive); err != nil {
		release()
		return nil, err
	}
	// The index (and settings) loaded by Open may predate the lock: reload
	// what changed, now that no conflicting process can change it.
	if err := r.ReloadIndex(ctx); err != nil {
		release()
		return nil, fmt.Errorf("lock: reload index: %w", err)
	}
	if err := r.reloadConfig(ctx); err != nil {
		release()
		return nil, fmt.Errorf("lock: %w", err)
	}
	r.lockLost.Store(nil)
	l := &Lock{r: r, exclusive: exclusive, id: id, info: li, refreshed: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go l.refreshLoop()
	return l, nil
}

// ErrLockLost is wrapped when this process's lock was not renewed in time or
// was removed by another process: others may have changed the repository
// meanwhile, so nothing is saved or deleted under it any more.
var ErrLockLost = errors.New("the repository lock was lost")

// LockErr returns a non-nil error wrapping ErrLockLost when a lock of this
// repository was lost. Operations that commit (save a snapshot) or delete
// check it first.
func (r *Repository) LockErr() error {
	if p := r.lockLost.Load(); p != nil {
		return *p
	}
	return nil
}

// checkLocks returns a *LockedError when a lock other than own conflicts.
// A lock file that vanishes between listing and loading may have been
// replaced by its holder's refresh, whose new file the listing missed: the
// locks are listed again rather than the vanished one being ignored.
func (r *Repository) checkLocks(ctx context.Context, own ID, exclusive bool) error {
	for attempt := 0; ; attempt++ {
		retry, err := r.checkLocksOnce(ctx, own, exclusive)
		if !retry || attempt >= 10 {
			return err
		}
	}
}

func (r *Repository) checkLocksOnce(ctx context.Context, own ID, exclusive bool) (retry bool, err error) {
	ids, err := r.ListFiles(ctx, backend.LockFile)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if id == own {
			continue
		}
		li, err := r.LoadLock(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			// An unreadable lock could be anyone's: be safe.
			if exclusive {
				return false, fmt.Errorf("lock: %w", err)
			}
			continue
		}
		if li.Stale() {
			continue
		}
		if exclusive || li.Exclusive {
			return false, &LockedError{Holder: *li}
		}
	}
	return false, nil
}

func (l *Lock) refreshLoop() {
	defer close(l.done)
	t := time.NewTicker(LockRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			err := l.Refresh(context.Background())
			l.mu.Lock()
			l.err = err
			if err == nil {
				l.refreshed = time.Now()
			}
			// Others treat the lock as stale after LockStaleAge: stop
			// committing well before that.
			lost := err != nil && (errors.Is(err, ErrLockLost) || time.Since(l.refreshed) > LockStaleAge/2)
			l.mu.Unlock()
			if lost {
				e := fmt.Errorf("%w: %v", ErrLockLost, err)
				l.r.lockLost.Store(&e)
			}
		}
	}
}

// Refresh renews the lock: it writes a new lock file, then removes the old.
func (l *Lock) Refresh(ctx context.Context) error {
	li := newLockInfo(l.exclusive)
	id, err := l.r.saveLock(ctx, li)
	if err != nil {
		return fmt.Errorf("refresh lock: %w", err)
	}
	li.ID = id
	l.mu.Lock()
	old := l.id
	l.id, l.info = id, li
	l.mu.Unlock()
	err = l.r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: old.String()})
	if errors.Is(err, backend.ErrNotExist) {
		// Someone removed our lock ('bunker unlock' took it for stale):
		// another process may have locked the repository since.
		return fmt.Errorf("refresh lock: lock %s was removed by another process: %w", old.Str(), ErrLockLost)
	}
	if err != nil {
		return fmt.Errorf("refresh lock: remove old lock %s: %w", old.Str(), err)
	}
	return nil
}

// Err returns the error of the last background refresh, nil if it worked.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Info returns the current content of the lock file.
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Unlock stops refreshing and removes the lock file.
func (l *Lock) Unlock() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		id := l.id
		l.mu.Unlock()
		err = l.r.be.Remove(context.Background(), backend.Handle{Type: backend.LockFile, Name: id.String()})
		if errors.Is(err, backend.ErrNotExist) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("unlock: %w", err)
		}
	})
	return err
}

// RemoveStaleLocks removes stale locks and returns how many it removed.
func (r *Repository) RemoveStaleLocks(ctx context.Context) (int, error) {
	ids, err := r.ListFiles(ctx, backend.LockFile)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		li, err := r.LoadLock(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		if !li.Stale() {
			continue
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return n, fmt.Errorf("remove lock %s: %w", id.Str(), err)
		}
		n++
	}
	return n, nil
}
