//go:build !unix

package nobodytest

import (
	"errors"
	"syscall"
)

// SysProcAttr returns nil: this system has no user ids to switch to.
func SysProcAttr() *syscall.SysProcAttr { return nil }

// rerun fails: this system has no user ids to switch to.
func rerun(bin, name, dir string) ([]byte, error) {
	return nil, errors.New("switching users is not supported on this system")
}
