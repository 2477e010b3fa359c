package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDumpRefusesTerminal: disk images and archives are not written to a
// terminal (a pseudo-terminal here); the hint says to redirect.
func TestDumpRefusesTerminal(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no pseudo-terminals, and CI is set: %v", err)
		}
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()

	g := &globalOptions{stdout: tty}
	err = g.refuseTerminal("a disk image", "disk.raw")
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "stdout is a terminal") {
		t.Fatalf("got %v", err)
	}
	if h := strings.Join(g.hints(err), "\n"); !strings.Contains(h, "redirect the output to a file") {
		t.Fatalf("hints %q", h)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	g.stdout = null
	if err := g.refuseTerminal("a disk image", "disk.raw"); err != nil {
		t.Fatalf("not a terminal: %v", err)
	}
}
