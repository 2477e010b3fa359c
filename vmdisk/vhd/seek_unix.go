//go:build unix

package vhd

import "syscall"

// errNXIO is what lseek(SEEK_DATA) returns when no data follows the offset.
var errNXIO error = syscall.ENXIO
