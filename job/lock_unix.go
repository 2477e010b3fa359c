//go:build unix

package job

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func tryFlock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		}
		return false, err
	}
}

func unflock(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// processGroup makes the hook its own process group leader, so a timeout
// kills the whole tree it started.
func processGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(p *os.Process) error {
	err := unix.Kill(-p.Pid, unix.SIGKILL)
	if err != nil {
		return p.Kill()
	}
	return nil
}

func termGroup(p *os.Process) error { return unix.Kill(-p.Pid, unix.SIGTERM) }
