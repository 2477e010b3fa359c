package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Run outcomes as notifications report them (the history statuses).
const (
	StatusSuccess = "success"
	StatusPartial = "partial"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// RunInfo describes a finished run for notifications and hooks.
type RunInfo struct {
	Job      string
	Status   string // success, partial, failed or skipped
	Start    time.Time
	End      time.Time
	Snapshot string
	Bytes    int64
	Error    string
	// Log is a short summary sent as the body of pings (at most 100 KB).
	Log string
}

// Env is the environment a notify command or hook sees:
// BUNKER_JOB, BUNKER_STATUS, BUNKER_START, BUNKER_END, BUNKER_DURATION
// (seconds), BUNKER_SNAPSHOT, BUNKER_BYTES, BUNKER_ERROR.
func (r RunInfo) Env() []string {
	env := []string{"BUNKER_JOB=" + r.Job, "BUNKER_STATUS=" + r.Status}
	if !r.Start.IsZero() {
		env = append(env, "BUNKER_START="+r.Start.UTC().Format(time.RFC3339))
	}
	if !r.End.IsZero() {
		env = append(env, "BUNKER_END="+r.End.UTC().Format(time.RFC3339))
		if !r.Start.IsZero() {
			env = append(env, "BUNKER_DURATION="+strconv.FormatInt(int64(r.End.Sub(r.Start)/time.Second), 10))
		}
	}
	env = append(env, "BUNKER_SNAPSHOT="+r.Snapshot, "BUNKER_BYTES="+strconv.FormatInt(r.Bytes, 10),
		"BUNKER_ERROR="+strings.ReplaceAll(r.Error, "\x00", ""))
	return env
}

// Notifier sends a job's notifications.
type Notifier struct {
	Notify Notify
	// Client makes the pings (nil = a client without its own timeout; each
	// request is bounded by Notify.Timeout).
	Client *http.Client
	// Retries is how many times a failed ping is retried (default 2).
	Retries int
	// RetryDelay is the wait between tries (default 1s).
	RetryDelay time.Duration
}

func (n Notifier) timeout() time.Duration {
	if n.Notify.Timeout > 0 {
		return n.Notify.Timeout
	}
	return DefaultNotifyTimeout
}

// Start pings URL/start (when a URL is configured), so the monitor can
// measure run time and notice runs that never finish.
func (n Notifier) Start(ctx context.Context) error {
	if n.Notify.URL == "" {
		return nil
	}
	return n.ping(ctx, n.Notify.URL+"/start", "")
}

// PingURL is the URL pinged at the end of a run with the given status:
// URL on success, URL/fail on failure or partial success, "" when skipped.
func (n Notifier) PingURL(status string) string {
	if n.Notify.URL == "" {
		return ""
	}
	switch status {
	case StatusSuccess:
		return n.Notify.URL
	case StatusSkipped:
		return ""
	}
	return n.Notify.URL + "/fail"
}

// Finish runs the notify command (with [RunInfo.Env]) and pings the URL.
// Both are attempted; it returns one error for each that failed (so each
// can be reported on a line of its own), the command's first. A
// notification error never changes the run's status: the caller reports it
// as a warning.
func (n Notifier) Finish(ctx context.Context, info RunInfo) []error {
	var errs []error
	if n.Notify.Command != "" {
		res := runHook(ctx, Hook{Command: n.Notify.Command, Timeout: n.timeout()}, info.Env())
		if res.Err != nil {
			msg := strings.TrimSpace(res.Output)
			if len(msg) > 500 {
				msg = msg[len(msg)-500:]
			}
			// One line: the tail of the output, its lines joined.
			msg = strings.Join(strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
			if msg != "" {
				errs = append(errs, fmt.Errorf("notify command: %w: %s", res.Err, msg))
			} else {
				errs = append(errs, fmt.Errorf("notify command: %w", res.Err))
			}
		}
	}
	if u := n.PingURL(info.Status); u != "" {
		body := info.Log
		if body == "" {
			body = fmt.Sprintf("bunker job %s: %s", info.Job, info.Status)
			if info.Error != "" {
				body += "\n" + info.Error
			}
		}
		if err := n.ping(ctx, u, body); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// maxPingBody is the largest body healthchecks.io accepts.
const maxPingBody = 100_000

func (n Notifier) ping(ctx context.Context, url, body string) error {
	if len(body) > maxPingBody {
		body = body[len(body)-maxPingBody:]
	}
	client := n.Client
	if client == nil {
		client = http.DefaultClient
	}
	retries := n.Retries
	if retries == 0 {
		retries = 2
	}
	delay := n.RetryDelay
	if delay == 0 {
		delay = time.Second
	}
	var last error
	for try := 0; try <= retries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("ping %s: %w", redact(url), ctx.Err())
			case <-time.After(delay):
			}
		}
		last = n.pingOnce(ctx, client, url, body)
		if last == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(last, &perm) {
			break
		}
	}
	return fmt.Errorf("ping %s: %w", redact(url), last)
}

type permanentError struct{ status int }

func (e *permanentError) Error() string { return "HTTP status " + strconv.Itoa(e.status) }

func (n Notifier) pingOnce(ctx context.Context, client *http.Client, url, body string) error {
	rctx, cancel := context.WithTimeout(ctx, n.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		return &permanentError{}
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", "bunker")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return &permanentError{status: resp.StatusCode}
}

// redact hides the secret part of a ping URL (its path holds the check's
// key) in messages: only scheme and host stay.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "(invalid URL)"
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host + "/..."
}
