//go:build unix

package local

import (
	"io/fs"
	"syscall"
)

// unlinked reports whether the open file described by fi has no name left
// (it was removed, or replaced by a rename).
func unlinked(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}
