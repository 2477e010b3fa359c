// Package faulty wraps a backend and injects errors, for tests of crash
// safety and error handling.
//
// A Rule selects calls by method and file type, lets the first After matching
// calls through and then fails the next Times calls (0 = every later call).
// A failing Save can still store the file first (Persist), which models a
// write that reached the disk although the caller saw an error.
package faulty

import (
	"context"
	"errors"
	"sync"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// Method names a Backend method.
type Method string

// The methods that can fail.
const (
	Save   Method = "save"
	Load   Method = "load"
	Stat   Method = "stat"
	List   Method = "list"
	Remove Method = "remove"
	Any    Method = ""
)

// ErrInjected is the default error of a rule.
var ErrInjected = errors.New("injected fault")

// Rule describes one fault.
type Rule struct {
	Method Method           // Any matches every method
	Type   backend.FileType // "" matches every file type
	After  int              // matching calls that succeed before the fault
	Times  int              // failing calls; 0 = all later matching calls
	Err    error            // nil = ErrInjected
	// Persist makes a failing Save store the data before it returns the
	// error.
	Persist bool

	seen, failed int
}

// Backend injects faults into another backend.
type Backend struct {
	backend.Backend
	mu    sync.Mutex
	rules []*Rule
	calls map[Method]int
}

// New wraps be.
func New(be backend.Backend) *Backend {
	return &Backend{Backend: be, calls: make(map[Method]int)}
}

// Add installs a rule.
func (b *Backend) Add(r Rule) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rr := r
	b.rules = append(b.rules, &rr)
}

// Clear removes all rules.
func (b *Backend) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = nil
}

// Calls returns how many calls of m were made (failed ones included).
func (b *Backend) Calls(m Method) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[m]
}

// fault returns the rule that fails this call, if any.
func (b *Backend) fault(m Method, t backend.FileType) *Rule {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[m]++
	for _, r := range b.rules {
		if (r.Method != Any && r.Method != m) || (r.Type != "" && r.Type != t) {
			continue
		}
		r.seen++
		if r.seen <= r.After {
			continue
		}
		if r.Times > 0 && r.failed >= r.Times {
			continue
		}
		r.failed++
		return r
	}
	return nil
}

func (r *Rule) err(m Method, h backend.Handle) error {
	err := r.Err
	if err == nil {
		err = ErrInjected
	}
	return &Error{Method: m, Handle: h, Err: err}
}

// Error is an injected failure.
type Error struct {
	Method Method
	Handle backend.Handle
	Err    error
}

func (e *Error) Error() string {
	return string(e.Method) + " " + string(e.Handle.Type) + "/" + e.Handle.Name + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Save stores data unless a rule fails it.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if r := b.fault(Save, h.Type); r != nil {
		if r.Persist {
			if err := b.Backend.Save(ctx, h, data); err != nil {
				return err
			}
		}
		return r.err(Save, h)
	}
	return b.Backend.Save(ctx, h, data)
}

// Load reads h unless a rule fails it.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) ([]byte, error) {
	if r := b.fault(Load, h.Type); r != nil {
		return nil, r.err(Load, h)
	}
	return b.Backend.Load(ctx, h, offset, length)
}

// Stat returns the size of h unless a rule fails it.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if r := b.fault(Stat, h.Type); r != nil {
		return backend.FileInfo{}, r.err(Stat, h)
	}
	return b.Backend.Stat(ctx, h)
}

// List lists files of type t unless a rule fails it.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if r := b.fault(List, t); r != nil {
		return r.err(List, backend.Handle{Type: t})
	}
	return b.Backend.List(ctx, t, fn)
}

// Remove deletes h unless a rule fails it.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if r := b.fault(Remove, h.Type); r != nil {
		return r.err(Remove, h)
	}
	return b.Backend.Remove(ctx, h)
}
