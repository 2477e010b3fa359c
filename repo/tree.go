package repo

import (
	"io/fs"
	"time"
)

// NodeType is the kind of a file-system object in a tree.
type NodeType string

// The node types.
const (
	NodeFile     NodeType = "file"
	NodeDir      NodeType = "dir"
	NodeSymlink  NodeType = "symlink"
	NodeFIFO     NodeType = "fifo"
	NodeCharDev  NodeType = "chardev"
	NodeBlockDev NodeType = "blockdev"
	NodeSocket   NodeType = "socket"
)

// Tree is one directory: its entries sorted by Name (bytewise). It is stored
// as a JSON TreeBlob (see docs/design.md).
type Tree struct {
	Nodes []*Node `json:"nodes"`
}

// Node is one entry of a directory.
//
// Name and LinkTarget are arbitrary byte strings (Linux file names need not be
// UTF-8); their JSON encoding keeps them byte-exact (see docs/design.md).
type Node struct {
	Name       string      `json:"-"`
	Type       NodeType    `json:"type"`
	Mode       fs.FileMode `json:"mode"` // permission and special bits (setuid, setgid, sticky) as Go's fs.FileMode
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	User       string      `json:"user,omitempty"`
	Group      string      `json:"group,omitempty"`
	ModTime    time.Time   `json:"mtime"`
	AccessTime time.Time   `json:"atime,omitzero"`
	ChangeTime time.Time   `json:"ctime,omitzero"`
	Inode      uint64      `json:"inode,omitempty"`
	DeviceID   uint64      `json:"device_id,omitempty"` // st_dev of the file system holding the node
	Links      uint64      `json:"links,omitempty"`
	Size       uint64      `json:"size,omitempty"`
	LinkTarget string      `json:"-"`
	Rdev       uint64      `json:"rdev,omitempty"` // device number of a device node

	// Content lists a regular file's bytes in order: chunks stored as data
	// blobs and holes (all-zero ranges that are never stored).
	Content []Chunk `json:"content,omitempty"`
	// Subtree is the tree blob of a directory.
	Subtree *ID `json:"subtree,omitempty"`
	// Xattrs are the extended attributes, sorted by name.
	Xattrs []Xattr `json:"xattrs,omitempty"`
}

// Chunk is a run of a file's content: Len bytes stored in the data blob ID,
// or, when ID is nil, Len zero bytes (a hole).
type Chunk struct {
	ID  *ID    `json:"id,omitempty"`
	Len uint64 `json:"len"`
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}
