package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/chunk"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/vmdisk"
)

// Repo is what a backup needs of a repository; *repo.Repository implements
// it.
type Repo interface {
	Config() repo.Config
	BlobID(data []byte) repo.ID
	HasBlob(t repo.BlobType, id repo.ID) bool
	SaveBlob(ctx context.Context, t repo.BlobType, id repo.ID, data []byte) (added bool, stored int, err error)
	SaveTree(ctx context.Context, t *repo.Tree) (repo.ID, error)
	LoadTree(ctx context.Context, id repo.ID) (*repo.Tree, error)
	SaveChunkList(ctx context.Context, chunks []repo.DiskChunk) ([]repo.ID, error)
	Flush(ctx context.Context) error
	SaveSnapshot(ctx context.Context, sn *repo.Snapshot) (repo.ID, error)
}

// Sources are what a backup reads. A snapshot may hold files, disks or both.
type Sources struct {
	// Paths are files and directories; relative paths are made absolute.
	Paths []string
	// Disks are disk images and block devices.
	Disks []DiskSource
}

// DiskSource is one disk to back up.
type DiskSource struct {
	// Path is the image file or block device.
	Path string
	// Name is the disk's name in the snapshot; "" means the base name of
	// Path.
	Name string
	// Format forces a format ("" or "auto" detects it).
	Format string
	// Image is an already opened image to read instead of opening Path
	// (the caller closes it). Path is still used for the record and, when
	// it names a file, to detect changes.
	Image vmdisk.Image
}

// Options tune a backup. The zero value backs up with no parent, no
// excludes, the local host name and the current time.
type Options struct {
	Hostname       string    // "" = os.Hostname()
	Tags           []string  // stored sorted
	Time           time.Time // snapshot time; zero = now
	Job            string
	ProgramVersion string
	// Parent is the snapshot to compare with (the caller resolves the
	// default: the latest snapshot of the same host and paths). Unchanged
	// files and disk images are taken from it without being read.
	Parent *repo.Snapshot

	// Excludes are patterns (see Match); matching files and directories
	// are skipped.
	Excludes []string
	// IExcludes are patterns matched without regard to case.
	IExcludes []string
	// ExcludeIfPresent leaves out every directory that holds a file of
	// one of these names.
	ExcludeIfPresent []string
	// ExcludeCaches leaves out every directory that holds a CACHEDIR.TAG
	// file with the standard signature.
	ExcludeCaches bool
	// OneFileSystem keeps the walk on the file system of each source path:
	// mount points are recorded as empty directories.
	OneFileSystem bool
	// Force reads disk images that are in use (the disk is then marked
	// crash-consistent).
	Force bool

	// DryRun reads and chunks everything but stores nothing; the summary
	// tells what would have been added.
	DryRun bool

	// Progress receives status updates (nil = none).
	Progress Progress
	// ProgressInterval is the time between updates; 0 = 250ms.
	ProgressInterval time.Duration
	// Warn is called for every source that cannot be read (nil = ignore);
	// the snapshot is then marked incomplete.
	Warn func(path string, err error)
	// FileStatus, when set, is called for every regular file of a file
	// backup, from one goroutine, when the walk decides whether the file
	// is new, changed or unmodified (compared with Parent).
	FileStatus func(path string, status FileChange, size uint64)
}

// FileChange says how a file compares with the parent snapshot.
type FileChange string

// The file changes.
const (
	FileNew        FileChange = "new"
	FileChanged    FileChange = "changed"
	FileUnmodified FileChange = "unmodified"
)

// Progress receives status updates from one goroutine, so implementations
// need no locking: periodically while the backup runs, and once at the end.
type Progress interface {
	Update(Status)
}

// Status is a backup's progress. File totals grow while the scanner runs
// and are final once ScanDone is set; a disk counts as a file, and its size
// is added to BytesTotal when the disk is opened. BytesDone counts holes
// and unchanged files too.
type Status struct {
	Elapsed    time.Duration
	FilesDone  uint64
	FilesTotal uint64
	BytesDone  uint64
	BytesTotal uint64
	ScanDone   bool
	Errors     uint64
	// Current is the file or disk most recently started.
	Current string
}

// Files backs up paths; see Run.
func Files(ctx context.Context, r Repo, paths []string, opts Options) (*repo.Snapshot, error) {
	return Run(ctx, r, Sources{Paths: paths}, opts)
}

// Disks backs up disks; see Run.
func Disks(ctx context.Context, r Repo, disks []DiskSource, opts Options) (*repo.Snapshot, error) {
	return Run(ctx, r, Sources{Disks: disks}, opts)
}

// Run backs up src into r and saves the snapshot (unless opts.DryRun),
// returning it with its ID set. A snapshot with Incomplete set was saved
// although some sources could not be read.
func Run(ctx context.Context, r Repo, src Sources, opts Options) (*repo.Snapshot, error) {
	if len(src.Paths) == 0 && len(src.Disks) == 0 {
		return nil, errors.New("backup: nothing to back up")
	}
	if _, err := opts.excluder(); err != nil {
		return nil, err
	}
	cfg := r.Config()
	fileParams := chunk.Params{Min: cfg.FileChunker.Min, Max: cfg.FileChunker.Max, AvgBits: cfg.FileChunker.AvgBits}
	diskParams := chunk.Params{Min: cfg.DiskChunker.Min, Max: cfg.DiskChunker.Max, AvgBits: cfg.DiskChunker.AvgBits}
	for _, p := range []chunk.Params{fileParams, diskParams} {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("backup: repository config: %w", err)
		}
	}
	if err := chunk.CheckPolynomial(cfg.ChunkerPolynomial); err != nil {
		return nil, fmt.Errorf("backup: repository config: %w", err)
	}

	sn := &repo.Snapshot{
		Time:           opts.Time,
		Hostname:       opts.Hostname,
		Tags:           slices.Sorted(slices.Values(opts.Tags)),
		Excludes:       opts.Excludes,
		ProgramVersion: opts.ProgramVersion,
		Job:            opts.Job,
		UID:            uint32(os.Getuid()),
		GID:            uint32(os.Getgid()),
	}
	start := time.Now()
	if sn.Time.IsZero() {
		sn.Time = start
	}
	if sn.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("backup: get host name: %w", err)
		}
		sn.Hostname = h
	}
	if u, err := user.Current(); err == nil {
		sn.Username = u.Username
	}
	if opts.Parent != nil && !opts.Parent.ID.IsNull() {
		id := opts.Parent.ID
		sn.Parent = &id
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b := &run{
		ctx:        ctx,
		cancel:     cancel,
		r:          r,
		opts:       opts,
		pol:        cfg.ChunkerPolynomial,
		fileParams: fileParams,
		diskParams: diskParams,
		start:      start,
	}
	b.sum.BackupStart = start
	b.startSavers()
	stopProgress := b.startProgress(src)

	var rootErr error
	if len(src.Paths) > 0 {
		paths := make([]string, len(src.Paths))
		for i, p := range src.Paths {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("backup: %w", err)
			}
			paths[i] = abs
		}
		sn.Paths = append(sn.Paths, paths...)
		var tree *repo.ID
		tree, rootErr = b.files(paths)
		sn.Tree = tree
	}
	if rootErr == nil && len(src.Disks) > 0 {
		for _, d := range src.Disks {
			p := d.Path
			if p == "" {
				p = d.Name
			} else if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
			sn.Paths = append(sn.Paths, p)
		}
		sn.Disks, rootErr = b.disks(src.Disks)
	}
	b.stopSavers()
	stopProgress()
	if rootErr == nil {
		rootErr = b.err()
	}
	if rootErr != nil {
		return nil, rootErr
	}

	if !opts.DryRun {
		if err := r.Flush(ctx); err != nil {
			return nil, fmt.Errorf("backup: flush: %w", err)
		}
	}
	b.sum.BackupEnd = time.Now()
	b.sum.DataBlobs = b.dataBlobs.Load()
	b.sum.DataAdded = b.dataAdded.Load()
	b.sum.DataAddedPacked = b.dataPacked.Load()
	// Tree blobs that differ from the parent's, and chunk-list blobs.
	b.sum.TreeBlobs = b.treeBlobs.Load()
	sum := b.sum
	sn.Summary = &sum
	b.wmu.Lock()
	sn.Warnings = b.warnings
	b.wmu.Unlock()
	sn.Incomplete = len(sn.Warnings) > 0
	if opts.DryRun {
		return sn, nil
	}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, fmt.Errorf("backup: save snapshot: %w", err)
	}
	return sn, nil
}

// run is the state of one backup.
type run struct {
	ctx        context.Context
	cancel     context.CancelCauseFunc
	r          Repo
	opts       Options
	pol        uint64
	fileParams chunk.Params
	diskParams chunk.Params
	start      time.Time

	sum repo.SnapshotSummary // written by the walker only, until the end

	jobs    chan saveJob
	queued  byteBudget // chunk bytes submitted and not yet saved
	savers  sync.WaitGroup
	errOnce sync.Once
	fatal   error

	dataBlobs, dataAdded, dataPacked, treeBlobs atomic.Uint64
	dryRunSeen                                  sync.Map

	// progress
	filesDone, bytesDone, filesTotal, bytesTotal, errCount atomic.Uint64
	scanDone                                               atomic.Bool
	current                                                atomic.Pointer[string]

	wmu      sync.Mutex
	warnings []string
}

// fail records the first fatal error and cancels the backup.
func (b *run) fail(err error) {
	b.errOnce.Do(func() {
		b.fatal = err
		b.cancel(err)
	})
}

func (b *run) err() error {
	if err := context.Cause(b.ctx); err != nil {
		if b.fatal != nil {
			return b.fatal
		}
		return err
	}
	return nil
}

// warn reports a source that cannot be read.
func (b *run) warn(path string, err error) {
	msg := err.Error()
	if path != "" && !strings.Contains(msg, path) {
		msg = path + ": " + msg
	}
	b.errCount.Add(1)
	b.wmu.Lock()
	b.warnings = append(b.warnings, msg)
	b.wmu.Unlock()
	if b.opts.Warn != nil {
		b.opts.Warn(path, err)
	}
}

func (b *run) setCurrent(s string) {
	if b.opts.Progress != nil {
		b.current.Store(&s)
	}
}

// A completer is told when one of its chunks has been saved.
type completer interface {
	chunkSaved()
}

type saveJob struct {
	buf  *chunk.Buffer
	id   *repo.ID
	done completer
}

func (b *run) startSavers() {
	n := runtime.GOMAXPROCS(0)
	// A queue of one chunk per saver keeps the savers busy. Chunks vary in
	// size (a file chunk from 512 KiB to 8 MiB), so the memory they hold
	// is bounded by bytes too: the buffers of the chunks queued or being
	// saved may hold two average buffers per saver, or one largest chunk.
	b.jobs = make(chan saveJob, n)
	limit := 0
	for _, p := range []chunk.Params{b.fileParams, b.diskParams} {
		limit = max(limit, p.Max, 2*n*chunkBufSize(p))
	}
	b.queued.init(b.ctx, int64(limit))
	for range n {
		b.savers.Add(1)
		go b.saver()
	}
}

func (b *run) stopSavers() {
	close(b.jobs)
	b.savers.Wait()
}

// saver hashes and stores chunks. After a fatal error it keeps draining the
// queue, releasing buffers and completing jobs, so producers never block.
func (b *run) saver() {
	defer b.savers.Done()
	for j := range b.jobs {
		if b.ctx.Err() == nil {
			b.save(j)
		}
		n := cap(j.buf.Data)
		j.buf.Release()
		b.queued.release(int64(n))
		j.done.chunkSaved()
	}
}

func (b *run) save(j saveJob) {
	data := j.buf.Data
	id := b.r.BlobID(data)
	*j.id = id
	if b.opts.DryRun {
		if !b.r.HasBlob(repo.DataBlob, id) {
			if _, seen := b.dryRunSeen.LoadOrStore(id, struct{}{}); !seen {
				b.dataBlobs.Add(1)
				b.dataAdded.Add(uint64(len(data)))
			}
		}
		return
	}
	added, stored, err := b.r.SaveBlob(b.ctx, repo.DataBlob, id, data)
	if err != nil {
		b.fail(fmt.Errorf("save data blob %s: %w", id.Str(), err))
		return
	}
	if added {
		b.dataBlobs.Add(1)
		b.dataAdded.Add(uint64(len(data)))
		b.dataPacked.Add(uint64(stored))
	}
}

// submit queues a chunk for saving.
func (b *run) submit(buf *chunk.Buffer, id *repo.ID, done completer) error {
	if !b.queued.acquire(int64(cap(buf.Data))) {
		buf.Release()
		return b.err()
	}
	select {
	case b.jobs <- saveJob{buf: buf, id: id, done: done}:
		return nil
	case <-b.ctx.Done():
		b.queued.release(int64(cap(buf.Data)))
		buf.Release()
		return b.err()
	}
}

// chunkBufSize is the capacity chunk buffers of parameters p start with:
// room for most chunks (past Min, a chunk is longer than 2^AvgBits more
// bytes in 14% of cases), so that few grow.
func chunkBufSize(p chunk.Params) int {
	return min(p.Max, p.Min+2<<p.AvgBits)
}

// byteBudget bounds the bytes held by goroutines that acquire and release
// them. A request larger than the whole budget is granted when nothing
// else is held, so every request is granted eventually.
type byteBudget struct {
	mu    sync.Mutex
	cond  sync.Cond
	ctx   context.Context
	used  int64
	limit int64
}

// init sets the limit; waiting requests give up once ctx is done.
func (q *byteBudget) init(ctx context.Context, limit int64) {
	q.cond.L = &q.mu
	q.ctx = ctx
	q.limit = limit
	context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
}

// acquire waits until n bytes fit in the budget and takes them. It
// returns false, taking nothing, when the context is done first.
func (q *byteBudget) acquire(n int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.used > 0 && q.used+n > q.limit {
		if q.ctx.Err() != nil {
			return false
		}
		q.cond.Wait()
	}
	if q.ctx.Err() != nil {
		return false
	}
	q.used += n
	return true
}

// release gives back n bytes taken by acquire.
func (q *byteBudget) release(n int64) {
	q.mu.Lock()
	q.used -= n
	q.cond.Broadcast()
	q.mu.Unlock()
}

// startProgress starts the status reporter and, for file sources, the
// scanner that computes totals. The returned function stops both and sends
// the final status.
func (b *run) startProgress(src Sources) (stop func()) {
	p := b.opts.Progress
	if p == nil {
		return func() {}
	}
	interval := b.opts.ProgressInterval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(b.ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		b.scan(ctx, src)
		b.scanDone.Store(true)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.Update(b.status())
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		p.Update(b.status())
	}
}

func (b *run) status() Status {
	s := Status{
		Elapsed:    time.Since(b.start),
		FilesDone:  b.filesDone.Load(),
		BytesDone:  b.bytesDone.Load(),
		FilesTotal: b.filesTotal.Load(),
		BytesTotal: b.bytesTotal.Load(),
		ScanDone:   b.scanDone.Load(),
		Errors:     b.errCount.Load(),
	}
	if c := b.current.Load(); c != nil {
		s.Current = *c
	}
	return s
}

// scan counts the files and bytes the backup will read, for progress.
func (b *run) scan(ctx context.Context, src Sources) {
	excl, _ := b.opts.excluder()
	var walk func(path string, dev uint64)
	walk = func(path string, dev uint64) {
		if ctx.Err() != nil {
			return
		}
		entries, _ := os.ReadDir(path)
		for _, e := range entries {
			full := filepath.Join(path, e.Name())
			if excl.excluded(full) {
				continue
			}
			switch {
			case e.Type().IsRegular():
				if fi, err := e.Info(); err == nil {
					b.filesTotal.Add(1)
					b.bytesTotal.Add(uint64(fi.Size()))
				}
			case e.IsDir():
				if b.opts.OneFileSystem {
					if fi, err := e.Info(); err != nil || deviceOf(fi) != dev {
						continue
					}
				}
				walk(full, dev)
			}
		}
	}
	for _, p := range src.Paths {
		abs, err := filepath.Abs(p)
		if err != nil || excl.excluded(abs) {
			continue
		}
		fi, err := os.Lstat(abs)
		if err != nil {
			continue
		}
		switch {
		case fi.Mode().IsRegular():
			b.filesTotal.Add(1)
			b.bytesTotal.Add(uint64(fi.Size()))
		case fi.IsDir():
			walk(abs, deviceOf(fi))
		}
	}
}
