// Package mem is an in-memory backend for tests. It keeps the contracts of
// package backend (atomic saves, fs.ErrNotExist for missing files) and copies
// data in and out, so callers cannot alias stored bytes.
package mem

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// Backend is a repository held in memory.
type Backend struct {
	mu    sync.RWMutex
	files map[backend.Handle][]byte
}

var _ backend.Backend = (*Backend)(nil)

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{files: make(map[backend.Handle][]byte)}
}

// Location returns "mem:".
func (b *Backend) Location() string { return "mem:" }

func key(h backend.Handle) backend.Handle {
	if h.Type == backend.ConfigFile {
		h.Name = ""
	}
	return h
}

// Save stores a copy of data.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.Type != backend.ConfigFile && h.Name == "" {
		return fmt.Errorf("save %s: empty name", h.Type)
	}
	c := make([]byte, len(data))
	copy(c, data)
	b.mu.Lock()
	b.files[key(h)] = c
	b.mu.Unlock()
	return nil
}

// Load returns a copy of length bytes of h from offset (0 = to the end).
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	data, ok := b.files[key(h)]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("load %s/%s: %w", h.Type, h.Name, backend.ErrNotExist)
	}
	size := int64(len(data))
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %s/%s: invalid range offset %d length %d", h.Type, h.Name, offset, length)
	}
	if length == 0 {
		length = size - offset
	}
	if offset > size || length < 0 || offset+length > size {
		return nil, fmt.Errorf("load %s/%s: range %d+%d beyond end of file (size %d): %w", h.Type, h.Name, offset, length, size, io.ErrUnexpectedEOF)
	}
	c := make([]byte, length)
	copy(c, data[offset:offset+length])
	return c, nil
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, err
	}
	b.mu.RLock()
	data, ok := b.files[key(h)]
	b.mu.RUnlock()
	if !ok {
		return backend.FileInfo{}, fmt.Errorf("stat %s/%s: %w", h.Type, h.Name, backend.ErrNotExist)
	}
	return backend.FileInfo{Name: h.Name, Size: int64(len(data))}, nil
}

// List calls fn for every file of type t. It lists a snapshot taken at the
// start, so fn may save and remove files.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	var infos []backend.FileInfo
	b.mu.RLock()
	for h, data := range b.files {
		if h.Type == t {
			infos = append(infos, backend.FileInfo{Name: h.Name, Size: int64(len(data))})
		}
	}
	b.mu.RUnlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[key(h)]; !ok {
		return fmt.Errorf("remove %s/%s: %w", h.Type, h.Name, backend.ErrNotExist)
	}
	delete(b.files, key(h))
	return nil
}

// Close does nothing.
func (b *Backend) Close() error { return nil }
