package history

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Log is the history file at a path. Its methods are safe for concurrent
// use by many processes.
type Log struct {
	path string
	// Host is written into appended records that name no host.
	Host string
}

// Open returns the log at path; nothing is touched until the first call.
func Open(path string) *Log { return &Log{path: path} }

// Path is the file's path.
func (l *Log) Path() string { return l.path }

// Append writes one record: O_APPEND, an exclusive flock, one write, fsync.
// The file and its directory are created (0600 and 0700) when missing. A
// record without an id gets a new one, and one without a host gets l.Host.
func (l *Log) Append(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	if r.Host == "" {
		r.Host = l.Host
	}
	line, err := FormatLine(r)
	if err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	defer f.Close()
	if err := lockFile(ctx, f, true); err != nil {
		return fmt.Errorf("lock history %s: %w", l.path, err)
	}
	defer unlockFile(f)
	// A line cut short by a crash would swallow this record: end it first.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if rf, err := os.Open(l.path); err == nil {
			_, rerr := rf.ReadAt(last, fi.Size()-1)
			rf.Close()
			if rerr == nil && last[0] != '\n' {
				line = append([]byte{'\n'}, line...)
			}
		}
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("append history %s: %w", l.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync history %s: %w", l.path, err)
	}
	return nil
}

// ReadResult is the content of the file.
type ReadResult struct {
	Records []Record // in file order (oldest first, as appended)
	// Bad counts lines that did not parse (a crash cut them short, or an
	// editor damaged them); they are skipped.
	Bad int
	// FirstBad describes the first bad line ("line N: ...").
	FirstBad string
}

// ReadAll reads every record under a shared lock. A missing file is an
// empty history.
func (l *Log) ReadAll(ctx context.Context) (ReadResult, error) {
	var res ReadResult
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("read history: %w", err)
	}
	defer f.Close()
	if err := lockFile(ctx, f, false); err != nil {
		return res, fmt.Errorf("lock history %s: %w", l.path, err)
	}
	defer unlockFile(f)
	return read(ctx, f)
}

func read(ctx context.Context, rd io.Reader) (ReadResult, error) {
	var res ReadResult
	br := bufio.NewReaderSize(rd, 64<<10)
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Overlong line: skip to its end.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			n++
			res.Bad++
			if res.FirstBad == "" {
				res.FirstBad = fmt.Sprintf("line %d: too long", n)
			}
			if err == io.EOF {
				break
			}
			continue
		}
		if len(line) > 0 {
			n++
			if n%4096 == 0 && ctx.Err() != nil {
				return res, ctx.Err()
			}
			if len(bytes.TrimSpace(line)) > 0 {
				r, perr := ParseLine(line)
				if perr != nil {
					res.Bad++
					if res.FirstBad == "" {
						res.FirstBad = fmt.Sprintf("line %d: %v", n, perr)
					}
				} else {
					res.Records = append(res.Records, r)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read history: %w", err)
		}
	}
	return res, nil
}

// Query reads the file and returns the matching records, newest first.
func (l *Log) Query(ctx context.Context, q Query) ([]Record, ReadResult, error) {
	res, err := l.ReadAll(ctx)
	if err != nil {
		return nil, res, err
	}
	return Filter(res.Records, q), res, nil
}
