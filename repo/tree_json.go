package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Node names, link targets and xattr names are byte strings. JSON strings
// hold valid UTF-8 only, so a value that is not valid UTF-8 is stored base64
// encoded in a *_b64 field instead ("name_b64" in place of "name"). Valid
// UTF-8, including newlines and other control characters, round-trips
// through JSON string escapes byte-exact.

type nodeAlias Node

type nodeJSON struct {
	Name          string  `json:"name,omitempty"`
	NameB64       []byte  `json:"name_b64,omitempty"`
	LinkTarget    string  `json:"linktarget,omitempty"`
	LinkTargetB64 []byte  `json:"linktarget_b64,omitempty"`
	Xattrs        []Xattr `json:"xattrs,omitempty"`
	*nodeAlias
}

// MarshalJSON encodes a node with byte-exact name and link target.
func (n Node) MarshalJSON() ([]byte, error) {
	a := nodeAlias(n)
	j := nodeJSON{nodeAlias: &a, Xattrs: n.Xattrs}
	a.Xattrs = nil
	if utf8.ValidString(n.Name) {
		j.Name = n.Name
	} else {
		j.NameB64 = []byte(n.Name)
	}
	if utf8.ValidString(n.LinkTarget) {
		j.LinkTarget = n.LinkTarget
	} else {
		j.LinkTargetB64 = []byte(n.LinkTarget)
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes a node written by MarshalJSON.
func (n *Node) UnmarshalJSON(b []byte) error {
	var a nodeAlias
	j := nodeJSON{nodeAlias: &a}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*n = Node(a)
	n.Xattrs = j.Xattrs
	switch {
	case j.NameB64 != nil && j.Name != "":
		return errors.New("node has both name and name_b64")
	case j.NameB64 != nil:
		n.Name = string(j.NameB64)
	default:
		n.Name = j.Name
	}
	switch {
	case j.LinkTargetB64 != nil && j.LinkTarget != "":
		return errors.New("node has both linktarget and linktarget_b64")
	case j.LinkTargetB64 != nil:
		n.LinkTarget = string(j.LinkTargetB64)
	default:
		n.LinkTarget = j.LinkTarget
	}
	return nil
}

type xattrJSON struct {
	Name    string `json:"name,omitempty"`
	NameB64 []byte `json:"name_b64,omitempty"`
	Value   []byte `json:"value"`
}

// MarshalJSON encodes an xattr with a byte-exact name.
func (x Xattr) MarshalJSON() ([]byte, error) {
	j := xattrJSON{Value: x.Value}
	if j.Value == nil {
		j.Value = []byte{}
	}
	if utf8.ValidString(x.Name) {
		j.Name = x.Name
	} else {
		j.NameB64 = []byte(x.Name)
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes an xattr written by MarshalJSON.
func (x *Xattr) UnmarshalJSON(b []byte) error {
	var j xattrJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.NameB64 != nil && j.Name != "" {
		return errors.New("xattr has both name and name_b64")
	}
	x.Name = j.Name
	if j.NameB64 != nil {
		x.Name = string(j.NameB64)
	}
	x.Value = j.Value
	return nil
}

// validName reports whether s can be a directory entry name: not empty,
// not "." or "..", no slash and no NUL byte. Trees with other names are
// rejected on load, so a damaged or hostile tree cannot make restore write
// outside its target.
func validName(s string) error {
	if s == "" || s == "." || s == ".." {
		return fmt.Errorf("invalid name %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return fmt.Errorf("invalid name %q", s)
		}
	}
	return nil
}

// ValidateTree checks the invariants of a tree: valid names, sorted
// bytewise and unique, known node types, a subtree exactly for directories.
func ValidateTree(t *Tree) error {
	for i, n := range t.Nodes {
		if n == nil {
			return fmt.Errorf("node %d is null", i)
		}
		if err := validName(n.Name); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return fmt.Errorf("node %d (%q): names not sorted or not unique", i, n.Name)
		}
		switch n.Type {
		case NodeDir:
			if n.Subtree == nil {
				return fmt.Errorf("node %q: directory without subtree", n.Name)
			}
		case NodeFile, NodeSymlink, NodeFIFO, NodeCharDev, NodeBlockDev, NodeSocket:
			if n.Subtree != nil {
				return fmt.Errorf("node %q: %s with subtree", n.Name, n.Type)
			}
		default:
			return fmt.Errorf("node %q: unknown type %q", n.Name, n.Type)
		}
		if n.Type != NodeFile && len(n.Content) > 0 {
			return fmt.Errorf("node %q: %s with content", n.Name, n.Type)
		}
	}
	return nil
}

// encodeTree returns the JSON of a tree blob.
func encodeTree(t *Tree) ([]byte, error) {
	if t.Nodes == nil {
		t = &Tree{Nodes: []*Node{}}
	}
	return json.Marshal(t)
}

// decodeTree parses and validates the JSON of a tree blob.
func decodeTree(b []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	if err := ValidateTree(&t); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	return &t, nil
}
