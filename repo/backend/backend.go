// Package backend stores the files of a bunker repository.
//
// A Backend is a flat namespace of named files grouped by FileType. It knows
// nothing about encryption or the repository format: it moves opaque bytes.
// Every implementation must keep these contracts:
//
//   - Save is atomic: a reader never observes a partially written file, and a
//     crash during Save leaves either no file or the complete file. Data is
//     durable (fsync'd or equivalent) when Save returns nil.
//   - Saving a file that already exists with the same name is allowed and must
//     leave a complete file: repository files are named by the hash of their
//     content, so a re-save writes identical bytes.
//   - Load, Stat and Remove of a missing file return an error that wraps
//     fs.ErrNotExist (test it with errors.Is).
//   - List reports files in unspecified order; a file saved before List starts
//     is listed, one saved during List may or may not be.
//   - Every method honours ctx cancellation.
//
// Wrappers (fault injection, later retry or caching) implement Backend over
// another Backend, so cross-cutting behaviour never leaks into the concrete
// backends.
package backend

import (
	"context"
	"io/fs"
	"time"
)

// FileType names a group of files in a repository.
type FileType string

// The file types of a repository.
const (
	ConfigFile   FileType = "config"
	KeyFile      FileType = "key"
	SnapshotFile FileType = "snapshot"
	IndexFile    FileType = "index"
	PackFile     FileType = "data"
	LockFile     FileType = "lock"
	ProtectFile  FileType = "protect" // protections of snapshots against removal
	HistoryFile  FileType = "history" // records of runs (backup, check, ...)
)

// Handle names one file. Name is empty for ConfigFile.
type Handle struct {
	Type FileType
	Name string
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name string
	Size int64
}

// Backend is the storage of a repository. See the package documentation for
// the contracts every implementation keeps.
type Backend interface {
	// Location is a human-readable description of where the files live
	// (a directory path or URL), used in messages.
	Location() string

	// Save stores data under h atomically and durably. It must not keep
	// data after it returns: the caller reuses the buffer.
	Save(ctx context.Context, h Handle, data []byte) error

	// Load returns length bytes of h starting at offset. A length of 0 means
	// "to the end of the file". Reading beyond the end is an error.
	Load(ctx context.Context, h Handle, offset, length int64) ([]byte, error)

	// Stat returns the size of h.
	Stat(ctx context.Context, h Handle) (FileInfo, error)

	// List calls fn for every file of type t. An error from fn stops the
	// listing and is returned.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error

	// Remove deletes h.
	Remove(ctx context.Context, h Handle) error

	// Close releases resources held by the backend.
	Close() error
}

// ErrNotExist is wrapped by errors for files that do not exist.
var ErrNotExist = fs.ErrNotExist

// Dir returns the directory of a file type in the repository layout of
// docs/design.md ("keys", "snapshots", "index", "data", "locks",
// "protect", "history"), "" for the config.
func (t FileType) Dir() string {
	switch t {
	case ConfigFile:
		return ""
	case KeyFile:
		return "keys"
	case SnapshotFile:
		return "snapshots"
	case IndexFile:
		return "index"
	case PackFile:
		return "data"
	case LockFile:
		return "locks"
	case ProtectFile:
		return "protect"
	case HistoryFile:
		return "history"
	}
	return string(t)
}

// Path returns the file's path relative to the repository root, with '/'
// separators: "config", "keys/<id>", "data/<first two hex digits>/<id>".
// Backends that store files in a tree use it; messages use it to name files.
func (h Handle) Path() string {
	switch {
	case h.Type == ConfigFile:
		return "config"
	case h.Type == PackFile && len(h.Name) >= 2:
		return "data/" + h.Name[:2] + "/" + h.Name
	}
	return h.Type.Dir() + "/" + h.Name
}

// TempFile is a temporary file that a writer killed during Save left
// behind.
type TempFile struct {
	Path    string // relative to the repository root, with '/' separators
	Size    int64
	ModTime time.Time
}

// TempCleaner is implemented by backends whose Save writes a temporary file
// first (the local backend), which a writer killed at the wrong moment
// leaves behind. Backends without temporary files need not implement it.
// A temporary file may belong to a Save in progress: callers remove only
// those older than StaleTempAge (prune, which holds the exclusive lock;
// history files are saved without a lock, so age is what protects them).
type TempCleaner interface {
	// ListTemp calls fn for every temporary file of the repository.
	ListTemp(ctx context.Context, fn func(TempFile) error) error
	// RemoveTemp deletes a temporary file that ListTemp reported. A file
	// that is gone already is not an error.
	RemoveTemp(ctx context.Context, f TempFile) error
}

// StaleTempAge is the age from which a temporary file is taken to be
// abandoned by a killed writer: no Save takes that long.
const StaleTempAge = time.Hour
