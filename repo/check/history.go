package check

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
)

// Kinds of problems outside the backed-up data: both are warnings, because
// no snapshot depends on them.
const (
	HistoryDamaged Kind = "history_damaged" // a history file cannot be loaded
	TempFiles      Kind = "temporary_files" // temporary files left by killed writers
)

// checkHistory loads every history file (docs/design.md §19): one that
// does not hash to its name, unseal or decode is a warning. The run
// history is lost for that file, the backups are not.
func (c *checker) checkHistory(ctx context.Context) error {
	var names []string
	err := c.be.List(ctx, backend.HistoryFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list history files: %w", err)
	}
	c.prog.Phase("check history", len(names))
	for _, n := range names {
		file := backend.Handle{Type: backend.HistoryFile, Name: n}.Path()
		id, err := repo.ParseID(n)
		if err != nil {
			c.res.add(Problem{Severity: Warning, Kind: UnknownFile, File: file, Message: fmt.Sprintf("%s: unknown file (name is not an id)", file)})
			c.prog.Done(1)
			continue
		}
		_, err = c.r.LoadHistory(ctx, id)
		c.prog.Done(1)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, backend.ErrNotExist):
			// merged by a prune meanwhile
		default:
			c.res.add(Problem{Severity: Warning, Kind: HistoryDamaged, File: file,
				Message: fmt.Sprintf("%s: %v (run history only, no snapshot is affected; delete the file to silence this)", file, err)})
		}
	}
	return nil
}

// checkTemp reports temporary files older than backend.StaleTempAge, which
// killed writers left behind: harmless, and removed by prune.
func (c *checker) checkTemp(ctx context.Context, now time.Time) error {
	tc, ok := c.be.(backend.TempCleaner)
	if !ok {
		return nil
	}
	var n int
	var size int64
	err := tc.ListTemp(ctx, func(f backend.TempFile) error {
		if now.Sub(f.ModTime) >= backend.StaleTempAge {
			n++
			size += f.Size
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 0 {
		c.res.add(Problem{Severity: Warning, Kind: TempFiles,
			Message: fmt.Sprintf("%d temporary file%s (%s) left by interrupted writers (harmless; removed by prune)", n, plural(n), humanize.IBytes(uint64(size)))})
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
