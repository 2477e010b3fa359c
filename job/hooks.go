package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// HookResult is the outcome of one hook command.
type HookResult struct {
	Hook     Hook
	Output   string // combined stdout and stderr; the last 64 KiB when longer
	ExitCode int    // -1 when killed or not started
	Duration time.Duration
	TimedOut bool
	Err      error // nil when the command exited 0
}

// HookError is the error of a failed hook.
type HookError struct {
	Command  string
	ExitCode int
	TimedOut bool
	Timeout  time.Duration
	Err      error
}

func (e *HookError) Error() string {
	switch {
	case e.TimedOut:
		return fmt.Sprintf("hook %q timed out after %s and was killed", e.Command, e.Timeout)
	case e.ExitCode > 0:
		return fmt.Sprintf("hook %q exited with status %d", e.Command, e.ExitCode)
	}
	return fmt.Sprintf("hook %q: %v", e.Command, e.Err)
}

func (e *HookError) Unwrap() error { return e.Err }

// maxHookOutput is how much of a hook's output is kept (its end).
const maxHookOutput = 64 << 10

// killGrace is how long Wait waits for the output pipes after the kill;
// a daemon the hook left behind may hold them open.
const killGrace = 2 * time.Second

// RunHooks runs the hooks in order with "sh -c COMMAND", each in its own
// process group with env added to the inherited environment and stdin
// from /dev/null. A hook that outlives its timeout (or ctx) is killed with
// its whole process group. With keepGoing false the first failure stops
// the list (before hooks); with keepGoing true every hook runs (after,
// on-success, on-failure hooks). The error is the first failure, a
// *HookError; the results cover every hook started.
func RunHooks(ctx context.Context, hooks []Hook, env []string, keepGoing bool) ([]HookResult, error) {
	var results []HookResult
	var first error
	for _, h := range hooks {
		if err := ctx.Err(); err != nil {
			if first == nil {
				first = err
			}
			break
		}
		r := runHook(ctx, h, env)
		results = append(results, r)
		if r.Err != nil {
			if first == nil {
				first = r.Err
			}
			if !keepGoing {
				break
			}
		}
	}
	return results, first
}

func runHook(ctx context.Context, h Hook, env []string) HookResult {
	res := HookResult{Hook: h, ExitCode: -1}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, "/bin/sh", "-c", h.Command)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = processGroup()
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = killGrace
	out := &tailBuffer{max: maxHookOutput}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	res.Duration = time.Since(start)
	res.Output = out.String()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if errors.Is(err, exec.ErrWaitDelay) && res.ExitCode == 0 && hctx.Err() == nil {
		// The hook succeeded but left a background process holding its
		// output open (a daemon it started): that is not a failure.
		res.Output += "[bunker: stopped reading output left open by a background process]\n"
		err = nil
	}
	if err == nil {
		return res
	}
	he := &HookError{Command: h.Command, ExitCode: res.ExitCode, Timeout: timeout, Err: err}
	if errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		he.TimedOut, res.TimedOut = true, true
	} else if ctx.Err() != nil {
		he.Err = ctx.Err()
		he.ExitCode = -1
	}
	res.Err = he
	return res
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.dropped = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		t.dropped = true
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if t.dropped {
		return "[...]\n" + s
	}
	return s
}
