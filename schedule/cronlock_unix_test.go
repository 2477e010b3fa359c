//go:build unix

package schedule

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCronOverlapRecordsSkipped runs a rendered cron command with sh and a
// fake bunker: a start while the previous run holds the lock becomes "job
// skipped", a start with the lock free is "job run" only, whatever its
// exit status, and a failing guard runs nothing.
func TestCronOverlapRecordsSkipped(t *testing.T) {
	needTool(t, "flock")
	sh := needTool(t, "sh")
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	fake := filepath.Join(dir, "bunker")
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\nexit ${FAKE_EXIT:-0}\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	command := func(spec string) string {
		out, err := Crontab([]JobSpec{{Name: "x", Schedule: MustParse(spec)}}, Options{Binary: fake, User: true, LockDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.SplitN(l, " ", 6); len(f) == 6 && strings.HasSuffix(l, " job skipped x") {
				return strings.ReplaceAll(f[5], `\%`, "%")
			}
		}
		t.Fatalf("no line for job x in\n%s", out)
		return ""
	}
	run := func(cmd string, env ...string) string {
		t.Helper()
		os.Remove(calls)
		c := exec.Command(sh, "-c", cmd)
		c.Env = append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil && len(out) > 0 {
			t.Logf("%s: %v\n%s", cmd, err, out)
		}
		b, _ := os.ReadFile(calls)
		return string(b)
	}
	daily := command("daily 02:00")

	if got := run(daily); got != "job run x\n" {
		t.Errorf("lock free: calls %q", got)
	}
	if got := run(daily, "FAKE_EXIT=1"); got != "job run x\n" {
		t.Errorf("lock free, failed run: calls %q", got)
	}

	f, err := os.OpenFile(filepath.Join(dir, "bunker-x.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if got := run(daily); got != "job skipped x\n" {
		t.Errorf("lock held: calls %q", got)
	}
	// A guard that fails (not the third Monday today, or so the fake date
	// says) runs nothing, lock held or not.
	third := command("monthly third-mon 04:00")
	datedir := t.TempDir()
	if err := os.WriteFile(filepath.Join(datedir, "date"), []byte("#!/bin/sh\necho 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := run(third, "PATH="+datedir+":"+os.Getenv("PATH")); got != "" {
		t.Errorf("guard false, lock held: calls %q", got)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if got := run(third, "PATH="+datedir+":"+os.Getenv("PATH")); got != "" {
		t.Errorf("guard false: calls %q", got)
	}
}
