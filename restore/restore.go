package restore

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/bunkerbackup/bunker/repo"
)

// Repo is the part of a repository a restore reads from.
// *repo.Repository implements it; all methods must be safe for concurrent
// use.
type Repo interface {
	// LoadBlob returns the plaintext of a blob, verified against its id.
	// It may use buf as the destination.
	LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error)
	// LoadTree loads a directory tree.
	LoadTree(ctx context.Context, id repo.ID) (*repo.Tree, error)
	// LoadChunkList calls fn for each entry of the chunk list stored in
	// the tree blobs ids, in order.
	LoadChunkList(ctx context.Context, ids []repo.ID, fn func(repo.DiskChunk) error) error
}

// Progress receives restore progress. Items are files (file restores) or
// chunks and hole pieces (disk restores). A nil Progress is a no-op.
type Progress interface {
	// Total reports the work to do once it is known.
	Total(items, bytes int64)
	// Done reports finished work.
	Done(items, bytes int64)
}

type noProgress struct{}

func (noProgress) Total(int64, int64) {}
func (noProgress) Done(int64, int64)  {}

func progressOrNoop(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}

func workerCount(n int) int {
	if n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// Failure is something that could not be restored: a path of the snapshot,
// or for disks a byte range written as "disk:NAME@START-END".
type Failure struct {
	Path string
	Err  error
}

// IncompleteError is returned when a restore finished but some items could
// not be restored (a damaged blob, a permission problem); the callback in
// the options allowed to continue. Everything else was restored.
type IncompleteError struct {
	Failed []Failure
}

func (e *IncompleteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "could not restore %d item", len(e.Failed))
	if len(e.Failed) != 1 {
		b.WriteString("s")
	}
	for i, f := range e.Failed {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-i)
			break
		}
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s: %v", sep, f.Path, f.Err)
	}
	return b.String()
}

// errorSink serialises calls of an OnError callback and records failures.
type errorSink struct {
	mu      sync.Mutex
	onError func(path string, err error) error
	failed  []Failure
	fatal   error
	cancel  context.CancelFunc
}

// report records a failure. It returns a non-nil error when the restore
// must stop; it then also cancels the restore's context.
func (s *errorSink) report(path string, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal != nil {
		return s.fatal
	}
	if s.onError == nil {
		s.fatal = fmt.Errorf("restore %s: %w", path, err)
	} else if ferr := s.onError(path, err); ferr != nil {
		s.fatal = ferr
	}
	if s.fatal != nil {
		if s.cancel != nil {
			s.cancel()
		}
		return s.fatal
	}
	s.failed = append(s.failed, Failure{Path: path, Err: err})
	return nil
}

func (s *errorSink) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// result returns the error a restore ends with: the fatal error, else an
// IncompleteError when something failed, else nil.
func (s *errorSink) result() ([]Failure, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal != nil {
		return s.failed, s.fatal
	}
	if len(s.failed) > 0 {
		return s.failed, &IncompleteError{Failed: append([]Failure(nil), s.failed...)}
	}
	return nil, nil
}

// bufPool recycles blob buffers.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// getBuf returns a pooled buffer of length n. Its capacity has room for
// one more byte (the repository's decompressor wants it to detect an
// overlong frame) and is rounded up so buffers fit chunks of other sizes.
func getBuf(n int) *[]byte {
	p := bufPool.Get().(*[]byte)
	if cap(*p) < n+1 {
		*p = make([]byte, (n+1+bufRound-1)/bufRound*bufRound)
	}
	*p = (*p)[:n]
	return p
}

const bufRound = 64 << 10

func putBuf(p *[]byte) {
	if p != nil && cap(*p) <= 64<<20 {
		bufPool.Put(p)
	}
}

// loadBlob loads a data blob of known length into a pooled buffer.
func loadBlob(ctx context.Context, r Repo, id repo.ID, n int) (*[]byte, error) {
	p := getBuf(n)
	data, err := r.LoadBlob(ctx, repo.DataBlob, id, (*p)[:0])
	if err != nil {
		putBuf(p)
		return nil, err
	}
	if len(data) != n {
		putBuf(p)
		return nil, fmt.Errorf("blob %s has %d bytes, want %d", id.Str(), len(data), n)
	}
	*p = data
	return p, nil
}

var zeroBuf = make([]byte, 1<<20)

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBuf))
		if string(b[:n]) != string(zeroBuf[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
