//go:build unix

package repo

import (
	"errors"
	"syscall"
)

// processExists reports whether a process with pid runs on this host.
func processExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
