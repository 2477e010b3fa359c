package repo

import (
	"errors"
	"fmt"
)

var (
	// ErrNoRepository means there is no repository at the location.
	ErrNoRepository = errors.New("repository does not exist")
	// ErrWrongPassword means no key file opens with the password.
	ErrWrongPassword = errors.New("wrong password or no key found")
	// ErrNewerFormat means a file was written by a newer bunker that uses a
	// format version this one does not know.
	ErrNewerFormat = errors.New("created by a newer version of bunker; upgrade bunker to read it")
	// ErrAlreadyExists means Init found a repository at the location.
	ErrAlreadyExists = errors.New("repository already exists")
	// ErrBlobNotFound means the index does not know a blob.
	ErrBlobNotFound = errors.New("blob not found in index")
)

// BlobError is the failure to load or verify one blob of a pack.
type BlobError struct {
	Type BlobType
	ID   ID
	Pack ID // null when the blob is not in the index
	Err  error
}

func (e *BlobError) Error() string {
	if e.Pack.IsNull() {
		return fmt.Sprintf("load %s blob %s: %v", e.Type, e.ID.Str(), e.Err)
	}
	return fmt.Sprintf("load %s blob %s from pack %s: %v", e.Type, e.ID.Str(), e.Pack.Str(), e.Err)
}

func (e *BlobError) Unwrap() error { return e.Err }

// newerFormat returns the error for a file with an unknown version.
func newerFormat(what string, version int) error {
	return fmt.Errorf("%s has format version %d: %w", what, version, ErrNewerFormat)
}
