package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress collects counters from a library call (through the small
// adapters next to each command) and renders them from one goroutine: a
// progress bar on a terminal, or `status` JSON lines with --json. Without
// either it only counts.
type progress struct {
	g     *globalOptions
	start time.Time

	totalFiles, totalBytes atomic.Int64
	filesDone, bytesDone   atomic.Int64
	errors                 atomic.Int64
	phase                  atomic.Pointer[string]

	items bool // count items (check phases), not bytes
	bar   *progressbar.ProgressBar
	stop  chan struct{}
	wg    sync.WaitGroup
}

// statusInterval is how often --json status lines are written.
const statusInterval = time.Second

func (g *globalOptions) newProgress(description string) *progress {
	return g.startProgress(description, false)
}

// newItemProgress counts items instead of bytes.
func (g *globalOptions) newItemProgress(description string) *progress {
	return g.startProgress(description, true)
}

func (g *globalOptions) startProgress(description string, items bool) *progress {
	p := &progress{g: g, start: time.Now(), stop: make(chan struct{}), items: items}
	interval := time.Duration(0)
	switch {
	case g.showProgress():
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(g.stderr),
			progressbar.OptionSetDescription(description),
			progressbar.OptionShowBytes(!items),
			progressbar.OptionShowTotalBytes(!items),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		interval = 100 * time.Millisecond
	case g.JSON:
		interval = statusInterval
	}
	if interval > 0 {
		p.wg.Add(1)
		go p.loop(interval)
	}
	return p
}

func (p *progress) loop(interval time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.render()
		}
	}
}

func (p *progress) render() {
	total, done := p.totalBytes.Load(), p.bytesDone.Load()
	if p.items {
		total, done = p.totalFiles.Load(), p.filesDone.Load()
	}
	if p.bar != nil {
		if total > 0 && total >= done {
			p.bar.ChangeMax64(total)
		}
		p.bar.Set64(done)
		return
	}
	st := map[string]any{
		"message_type":    "status",
		"seconds_elapsed": int64(time.Since(p.start).Seconds()),
		"total_files":     p.totalFiles.Load(),
		"files_done":      p.filesDone.Load(),
		"total_bytes":     total,
		"bytes_done":      done,
		"error_count":     p.errors.Load(),
	}
	if total > 0 {
		st["percent_done"] = float64(done) / float64(total)
	}
	if p.phase.Load() != nil {
		st["phase"] = *p.phase.Load()
	}
	p.g.out.jsonLine(st)
}

// itemProgress adapts progress to check.Progress: each phase restarts the
// item counters.
type itemProgress struct{ *progress }

func (p itemProgress) Done(n int) { p.filesDone.Add(int64(n)) }

func (p itemProgress) Phase(name string, total int) {
	p.phase.Store(&name)
	p.totalFiles.Store(int64(total))
	p.filesDone.Store(0)
	if p.bar != nil {
		p.bar.Describe(name)
	}
}

// done stops rendering and clears the bar.
func (p *progress) done() {
	select {
	case <-p.stop:
		return
	default:
		close(p.stop)
	}
	p.wg.Wait()
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Clear()
	}
}
