//go:build unix

package nobodytest

import (
	"os/exec"
	"regexp"
	"syscall"
)

// SysProcAttr returns the process attributes that start a child as nobody.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: UID, Gid: GID}}
}

// rerun runs the test named name of the test binary bin as nobody, in dir.
func rerun(bin, name, dir string) ([]byte, error) {
	cmd := exec.Command(bin, "-test.run=^"+regexp.QuoteMeta(name)+"$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.SysProcAttr = SysProcAttr()
	return cmd.CombinedOutput()
}
