package repo

import (
	"encoding/hex"
	"fmt"
)

// IDSize is the length of an ID in bytes.
const IDSize = 32

// ID identifies a blob (keyed BLAKE3 of its plaintext) or a repository file
// (unkeyed BLAKE3 of its stored bytes).
type ID [IDSize]byte

// ParseID parses the 64 hex digits of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("invalid id %q: want %d hex digits", s, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// String returns the ID as 64 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Str returns the short form of the ID (8 hex digits) used in messages.
func (id ID) Str() string { return hex.EncodeToString(id[:4]) }

// IsNull reports whether id is the zero ID.
func (id ID) IsNull() bool { return id == ID{} }

// MarshalText encodes the ID as hex, so IDs appear as strings in JSON.
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, 2*IDSize)
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// BlobType separates file content from metadata. They are stored in
// different packs so metadata can be read (and later cached) without
// touching file content.
type BlobType uint8

const (
	// DataBlob holds a chunk of file or disk content.
	DataBlob BlobType = 0
	// TreeBlob holds metadata: a directory tree (JSON) or a disk chunk list
	// (binary).
	TreeBlob BlobType = 1
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}
