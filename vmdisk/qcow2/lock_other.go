//go:build !linux

package qcow2

import "os"

// writeLockHolder is a no-op where qemu's OFD locks cannot be queried.
func writeLockHolder(*os.File) (string, error) { return "", nil }
