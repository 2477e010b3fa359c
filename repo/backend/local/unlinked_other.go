//go:build !unix

package local

import "io/fs"

// unlinked reports whether the open file described by fi has no name left.
// Where the link count is not known, files cannot be removed while open
// (Windows) or it is assumed they were not.
func unlinked(fs.FileInfo) bool { return false }
