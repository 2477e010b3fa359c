package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bunkerbackup/bunker/repo/backend"
	"golang.org/x/sync/errgroup"
)

// HistoryFile is one loaded history file. A history file in history/
// holds records of runs (backups, checks, restores, ...) so that every host
// using the repository sees what ran against it (docs/design.md §19). The
// repository treats a record as an opaque JSON object with a string "id"
// unique to the record; package history defines the rest. A record may be
// stored in more than one file (a compaction interrupted between writing
// the merged file and removing the old ones), and readers keep one record
// per id. History files are written without a lock: a new file is named by
// the hash of its content and conflicts with nothing.
type HistoryFile struct {
	ID      ID
	Records []json.RawMessage
}

// historyJSON is the stored form of a history file.
type historyJSON struct {
	Version int               `json:"version"`
	Records []json.RawMessage `json:"records"`
}

// maxHistoryRecordID bounds the length of a record id.
const maxHistoryRecordID = 128

// HistoryRecordID returns the "id" of a record, or an error when rec is
// not a JSON object with a non-empty string id.
func HistoryRecordID(rec json.RawMessage) (string, error) {
	trimmed := bytes.TrimSpace(rec)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", errors.New("history record is not a JSON object")
	}
	var v struct {
		ID *string `json:"id"`
	}
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return "", fmt.Errorf("history record: %w", err)
	}
	switch {
	case v.ID == nil || *v.ID == "":
		return "", errors.New("history record has no id")
	case len(*v.ID) > maxHistoryRecordID:
		return "", errors.New("history record id too long")
	}
	return *v.ID, nil
}

func encodeHistory(recs []json.RawMessage) ([]byte, error) {
	if len(recs) == 0 {
		return nil, errors.New("encode history: no records")
	}
	for i, rec := range recs {
		if _, err := HistoryRecordID(rec); err != nil {
			return nil, fmt.Errorf("encode history: record %d: %w", i, err)
		}
	}
	return json.Marshal(historyJSON{Version: FormatVersion, Records: recs})
}

func decodeHistory(b []byte) ([]json.RawMessage, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode history: %w", err)
	}
	if v.Version > FormatVersion {
		return nil, newerFormat("history file", v.Version)
	}
	if v.Version < 1 {
		return nil, fmt.Errorf("decode history: invalid version %d", v.Version)
	}
	var h historyJSON
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode history: %w", err)
	}
	if len(h.Records) == 0 {
		return nil, errors.New("decode history: no records")
	}
	for i, rec := range h.Records {
		if _, err := HistoryRecordID(rec); err != nil {
			return nil, fmt.Errorf("decode history: record %d: %w", i, err)
		}
	}
	return h.Records, nil
}

// SaveHistory stores records (JSON objects, each with an "id") as a new
// history file and returns its id. It needs no lock.
func (r *Repository) SaveHistory(ctx context.Context, records []json.RawMessage) (ID, error) {
	b, err := encodeHistory(records)
	if err != nil {
		return ID{}, fmt.Errorf("save history: %w", err)
	}
	id, err := r.saveSealed(ctx, backend.HistoryFile, b)
	if err != nil {
		return ID{}, fmt.Errorf("save history: %w", err)
	}
	return id, nil
}

// LoadHistory loads one history file.
func (r *Repository) LoadHistory(ctx context.Context, id ID) (*HistoryFile, error) {
	plain, err := r.loadSealed(ctx, backend.HistoryFile, id)
	if err != nil {
		return nil, fmt.Errorf("load history %s: %w", id.Str(), err)
	}
	recs, err := decodeHistory(plain)
	if err != nil {
		return nil, fmt.Errorf("load history %s: %w", id.Str(), err)
	}
	return &HistoryFile{ID: id, Records: recs}, nil
}

// HistoryError is a history file that exists but cannot be loaded.
type HistoryError struct {
	ID  ID
	Err error
}

func (e *HistoryError) Error() string { return e.Err.Error() }

func (e *HistoryError) Unwrap() error { return e.Err }

// Histories loads every history file, sorted by id. A file that cannot be
// loaded is skipped and returned in damaged; err is set only when the
// files cannot be listed. A file removed between listing and loading was
// merged by a compaction, which writes the merged file before removing
// the old ones: the files are then listed again, so no record is missed.
func (r *Repository) Histories(ctx context.Context) (files []*HistoryFile, damaged []*HistoryError, err error) {
	for attempt := 0; ; attempt++ {
		files, damaged, vanished, err := r.loadHistories(ctx)
		if err != nil || !vanished || attempt >= 10 {
			return files, damaged, err
		}
	}
}

func (r *Repository) loadHistories(ctx context.Context) (files []*HistoryFile, damaged []*HistoryError, vanished bool, err error) {
	ids, err := r.ListFiles(ctx, backend.HistoryFile)
	if err != nil {
		return nil, nil, false, err
	}
	loaded := make([]*HistoryFile, len(ids))
	errs := make([]error, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			loaded[i], errs[i] = r.LoadHistory(gctx, id)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, false, err
	}
	for i, id := range ids {
		switch {
		case errs[i] == nil:
			files = append(files, loaded[i])
		case errors.Is(errs[i], backend.ErrNotExist):
			vanished = true
		default:
			damaged = append(damaged, &HistoryError{ID: id, Err: errs[i]})
		}
	}
	return files, damaged, vanished, nil
}

// RemoveHistory removes a history file; one that is gone already is not an
// error.
func (r *Repository) RemoveHistory(ctx context.Context, id ID) error {
	err := r.be.Remove(ctx, backend.Handle{Type: backend.HistoryFile, Name: id.String()})
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return fmt.Errorf("remove history %s: %w", id.Str(), err)
	}
	return nil
}
