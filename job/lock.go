package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is returned by TryLock when another process holds the job's lock.
var ErrLocked = errors.New("job is already running")

// Lock is a held job lock; Unlock releases it. The kernel releases it too
// when the process dies, so a crash never leaves a stale lock.
type Lock struct {
	f    *os.File
	path string
}

// LockPath is the lock file of a job in a state directory.
func LockPath(stateDir, job string) string {
	return filepath.Join(stateDir, "locks", job+".lock")
}

// TryLock takes the job's lock without waiting. When another process holds
// it, the error wraps ErrLocked and names the holder's pid when known.
func TryLock(stateDir, job string) (*Lock, error) {
	p := LockPath(stateDir, job)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("lock job %s: %w", job, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock job %s: %w", job, err)
	}
	held, err := tryFlock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock job %s: %w", job, err)
	}
	if !held {
		buf := make([]byte, 32)
		n, _ := f.ReadAt(buf, 0)
		f.Close()
		if pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); err == nil && pid > 0 {
			return nil, fmt.Errorf("lock job %s: %w (pid %d)", job, ErrLocked, pid)
		}
		return nil, fmt.Errorf("lock job %s: %w", job, ErrLocked)
	}
	// Record the holder for the message above; best effort.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: p}, nil
}

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Unlock releases the lock. The file stays: removing it would race with a
// process that opened it and is about to lock it.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	unflock(l.f)
	err := l.f.Close()
	l.f = nil
	return err
}
