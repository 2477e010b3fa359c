package prune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
)

// HistoryCompactAt is the number of history files above which prune
// merges them into one. Every recorded run adds a file; merging keeps
// reading the history cheap.
const HistoryCompactAt = 16

// planHousekeeping lists the history files and the stale temporary files.
func (p *Plan) planHousekeeping(ctx context.Context, now time.Time) error {
	ids, err := p.r.ListFiles(ctx, backend.HistoryFile)
	if err != nil {
		return err
	}
	p.HistoryFiles = len(ids)
	if len(ids) > HistoryCompactAt {
		p.CompactHistory = true
		p.historyFiles = ids
	}
	tc, ok := p.r.Backend().(backend.TempCleaner)
	if !ok {
		return nil
	}
	return tc.ListTemp(ctx, func(f backend.TempFile) error {
		if now.Sub(f.ModTime) >= backend.StaleTempAge {
			p.temps = append(p.temps, f)
			p.TempFiles++
			p.TempBytes += f.Size
		}
		return nil
	})
}

// compactHistory merges the planned history files into one: it writes the
// merged file first and then removes the files merged into it, so a crash
// at any point leaves every record in at least one file (readers keep one
// record per id). Files written since the plan was made are not touched.
// A file that cannot be loaded is left alone and counted as damaged.
func (p *Plan) compactHistory(ctx context.Context, res *Result) error {
	if !p.CompactHistory {
		return nil
	}
	p.prog.Phase("merge history files", len(p.historyFiles))
	var (
		merged  []repo.ID
		records []json.RawMessage
		seen    = make(map[string]bool)
	)
	for _, id := range p.historyFiles {
		f, err := p.r.LoadHistory(ctx, id)
		p.prog.Done(1)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, backend.ErrNotExist):
			continue
		case err != nil:
			res.HistoryFilesDamaged++
			continue
		}
		merged = append(merged, id)
		for _, rec := range f.Records {
			rid, err := repo.HistoryRecordID(rec)
			if err != nil || seen[rid] {
				continue // LoadHistory checked the ids
			}
			seen[rid] = true
			records = append(records, rec)
		}
	}
	if len(merged) < 2 {
		return nil
	}
	id, err := p.r.SaveHistory(ctx, records)
	if err != nil {
		return err
	}
	res.HistoryRecords = len(records)
	if err := p.r.LockErr(); err != nil {
		return err
	}
	for _, old := range merged {
		if old == id {
			continue
		}
		if err := p.r.RemoveHistory(ctx, old); err != nil {
			return err
		}
		res.HistoryFilesMerged++
	}
	return nil
}

// removeTemp removes the planned temporary files.
func (p *Plan) removeTemp(ctx context.Context, res *Result) error {
	if len(p.temps) == 0 {
		return nil
	}
	tc, ok := p.r.Backend().(backend.TempCleaner)
	if !ok {
		return nil
	}
	if err := p.r.LockErr(); err != nil {
		return err
	}
	p.prog.Phase("remove temporary files", len(p.temps))
	for _, f := range p.temps {
		if err := tc.RemoveTemp(ctx, f); err != nil {
			return fmt.Errorf("remove temporary file %s: %w", f.Path, err)
		}
		res.TempFilesRemoved++
		res.TempBytesRemoved += f.Size
		p.prog.Done(1)
	}
	return nil
}
