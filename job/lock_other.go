//go:build !unix

package job

import (
	"os"
	"syscall"
)

// Without flock (Windows) job locks are not enforced: jobs are scheduled by
// systemd or cron, which exist only on unix systems.
func tryFlock(f *os.File) (bool, error) { return true, nil }

func unflock(f *os.File) {}

func processGroup() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process) error { return p.Kill() }

func termGroup(p *os.Process) error { return p.Kill() }
