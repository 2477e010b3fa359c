package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bunkerbackup/bunker/repo/backend"
	"golang.org/x/sync/errgroup"
)

// snapshotJSON is the stored form of a snapshot: its fields plus a version.
type snapshotJSON struct {
	Version int `json:"version"`
	*Snapshot
}

func encodeSnapshot(sn *Snapshot) ([]byte, error) {
	return json.Marshal(snapshotJSON{Version: FormatVersion, Snapshot: sn})
}

func decodeSnapshot(b []byte) (*Snapshot, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if v.Version > FormatVersion {
		return nil, newerFormat("snapshot", v.Version)
	}
	if v.Version < 1 {
		return nil, fmt.Errorf("decode snapshot: invalid version %d", v.Version)
	}
	sn := &Snapshot{}
	if err := json.Unmarshal(b, &snapshotJSON{Snapshot: sn}); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if sn.Time.IsZero() {
		return nil, errors.New("decode snapshot: no time")
	}
	for i, d := range sn.Disks {
		if d.Size < 0 || d.DataBytes < 0 || d.DataBytes > d.Size {
			return nil, fmt.Errorf("decode snapshot: disk %d (%q): invalid size %d or data bytes %d", i, d.Name, d.Size, d.DataBytes)
		}
	}
	return sn, nil
}

// SaveSnapshot stores sn and sets sn.ID. Call Flush first: the snapshot
// must only reference blobs whose packs and index files are stored.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	if err := r.LockErr(); err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	r.imu.Lock()
	unindexed := len(r.unindexed)
	r.imu.Unlock()
	r.pmu.Lock()
	pending := len(r.pending[0]) + len(r.pending[1])
	r.pmu.Unlock()
	if unindexed > 0 || pending > 0 {
		return ID{}, errors.New("save snapshot: blobs are not flushed; call Flush first")
	}
	b, err := encodeSnapshot(sn)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	id, err := r.saveSealed(ctx, backend.SnapshotFile, b)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	sn.ID = id
	return id, nil
}

// LoadSnapshot loads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	plain, err := r.loadSealed(ctx, backend.SnapshotFile, id)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Str(), err)
	}
	sn, err := decodeSnapshot(plain)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Str(), err)
	}
	sn.ID = id
	return sn, nil
}

// Snapshots loads all snapshots, sorted by time (then id). It fails if any
// snapshot cannot be loaded; SnapshotsWithErrors skips those instead.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	sns, errs, err := r.SnapshotsWithErrors(ctx)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return sns, nil
}

// SnapshotsWithErrors loads all snapshots that can be loaded, sorted by time
// (then id), and returns the errors of those that cannot (damaged files,
// newer format). err is set only when the snapshots cannot be listed.
func (r *Repository) SnapshotsWithErrors(ctx context.Context) (sns []*Snapshot, errs []error, err error) {
	ids, err := r.ListFiles(ctx, backend.SnapshotFile)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Snapshot, len(ids))
	loadErrs := make([]error, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			out[i], loadErrs[i] = r.LoadSnapshot(gctx, id)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for i := range ids {
		if loadErrs[i] != nil {
			errs = append(errs, loadErrs[i])
		} else {
			sns = append(sns, out[i])
		}
	}
	sort.SliceStable(sns, func(i, j int) bool {
		if !sns[i].Time.Equal(sns[j].Time) {
			return sns[i].Time.Before(sns[j].Time)
		}
		return sns[i].ID.String() < sns[j].ID.String()
	})
	return sns, errs, nil
}

// FindSnapshot finds the snapshot whose id starts with prefix (at least 4
// hex digits, or a full id), or "latest" for the newest.
func (r *Repository) FindSnapshot(ctx context.Context, prefix string) (*Snapshot, error) {
	if prefix == "latest" {
		sns, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		if len(sns) == 0 {
			return nil, fmt.Errorf("find snapshot latest: no snapshots: %w", backend.ErrNotExist)
		}
		return sns[len(sns)-1], nil
	}
	p := strings.ToLower(prefix)
	if len(p) == 0 || len(p) > 2*IDSize || strings.Trim(p, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("find snapshot %q: not a snapshot id", prefix)
	}
	ids, err := r.ListFiles(ctx, backend.SnapshotFile)
	if err != nil {
		return nil, err
	}
	var match []ID
	for _, id := range ids {
		if strings.HasPrefix(id.String(), p) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("find snapshot %s: no matching snapshot: %w", prefix, backend.ErrNotExist)
	case 1:
		return r.LoadSnapshot(ctx, match[0])
	}
	return nil, fmt.Errorf("find snapshot %s: prefix is ambiguous (%d snapshots match)", prefix, len(match))
}

// RemoveSnapshot removes a snapshot file. The blobs it referenced stay until
// prune.
func (r *Repository) RemoveSnapshot(ctx context.Context, id ID) error {
	if err := r.LockErr(); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", id.Str(), err)
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: id.String()}); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", id.Str(), err)
	}
	return nil
}
