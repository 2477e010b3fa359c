package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// Protection records that a snapshot must not be removed, until Until or,
// when Until is zero, until it is unprotected. It is stored as a small
// sealed JSON file in protect/, named by its file id like every other file,
// so protecting a snapshot never rewrites the snapshot (its id stays) and
// never rewrites a shared file. A snapshot may have several protections; it
// is protected while any of them is in force.
type Protection struct {
	Snapshot ID        `json:"snapshot"`
	Time     time.Time `json:"time"`           // when the protection was made
	Until    time.Time `json:"until,omitzero"` // zero: until unprotected
	Hostname string    `json:"hostname,omitempty"`
	Username string    `json:"username,omitempty"`
	Note     string    `json:"note,omitempty"`

	// ID is the protection file's id; it is not stored.
	ID ID `json:"-"`
}

// Active reports whether p protects its snapshot at time now.
func (p *Protection) Active(now time.Time) bool {
	return p.Until.IsZero() || now.Before(p.Until)
}

type protectionJSON struct {
	Version int `json:"version"`
	*Protection
}

func decodeProtection(b []byte) (*Protection, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode protection: %w", err)
	}
	if v.Version > FormatVersion {
		return nil, newerFormat("protection", v.Version)
	}
	if v.Version < 1 {
		return nil, fmt.Errorf("decode protection: invalid version %d", v.Version)
	}
	p := &Protection{}
	if err := json.Unmarshal(b, &protectionJSON{Protection: p}); err != nil {
		return nil, fmt.Errorf("decode protection: %w", err)
	}
	if p.Snapshot.IsNull() {
		return nil, errors.New("decode protection: no snapshot")
	}
	return p, nil
}

// SaveProtection stores p and sets p.ID. The snapshot must exist. Call it
// holding a lock (forget takes the exclusive lock, so a protection is never
// written while forget decides).
func (r *Repository) SaveProtection(ctx context.Context, p *Protection) (ID, error) {
	if _, err := r.be.Stat(ctx, backend.Handle{Type: backend.SnapshotFile, Name: p.Snapshot.String()}); err != nil {
		return ID{}, fmt.Errorf("protect snapshot %s: %w", p.Snapshot.Str(), err)
	}
	if p.Time.IsZero() {
		p.Time = time.Now()
	}
	b, err := json.Marshal(protectionJSON{Version: FormatVersion, Protection: p})
	if err != nil {
		return ID{}, fmt.Errorf("protect snapshot %s: %w", p.Snapshot.Str(), err)
	}
	id, err := r.saveSealed(ctx, backend.ProtectFile, b)
	if err != nil {
		return ID{}, fmt.Errorf("protect snapshot %s: %w", p.Snapshot.Str(), err)
	}
	p.ID = id
	return id, nil
}

// LoadProtection loads one protection file.
func (r *Repository) LoadProtection(ctx context.Context, id ID) (*Protection, error) {
	plain, err := r.loadSealed(ctx, backend.ProtectFile, id)
	if err != nil {
		return nil, fmt.Errorf("load protection %s: %w", id.Str(), err)
	}
	p, err := decodeProtection(plain)
	if err != nil {
		return nil, fmt.Errorf("load protection %s: %w", id.Str(), err)
	}
	p.ID = id
	return p, nil
}

// Protections loads every protection file, sorted by snapshot then time.
// A protection that cannot be loaded is an error: treating it as absent
// could let forget remove a protected snapshot.
func (r *Repository) Protections(ctx context.Context) ([]*Protection, error) {
	ids, err := r.ListFiles(ctx, backend.ProtectFile)
	if err != nil {
		return nil, err
	}
	var out []*Protection
	for _, id := range ids {
		p, err := r.LoadProtection(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Snapshot != out[j].Snapshot {
			return out[i].Snapshot.String() < out[j].Snapshot.String()
		}
		return out[i].Time.Before(out[j].Time)
	})
	return out, nil
}

// ProtectedSnapshots returns the snapshots protected at time now with the
// end of their protection (zero: until unprotected), the form
// retention.Options.Protected takes.
func ProtectedSnapshots(ps []*Protection, now time.Time) map[ID]time.Time {
	out := make(map[ID]time.Time)
	for _, p := range ps {
		if !p.Active(now) {
			continue
		}
		until, ok := out[p.Snapshot]
		switch {
		case !ok:
			out[p.Snapshot] = p.Until
		case until.IsZero() || p.Until.IsZero():
			out[p.Snapshot] = time.Time{}
		case p.Until.After(until):
			out[p.Snapshot] = p.Until
		}
	}
	return out
}

// RemoveProtection removes one protection file.
func (r *Repository) RemoveProtection(ctx context.Context, id ID) error {
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.ProtectFile, Name: id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
		return fmt.Errorf("remove protection %s: %w", id.Str(), err)
	}
	return nil
}

// RemoveProtections removes every protection of the snapshot and returns
// how many there were. Used by unprotect, and by forget for a snapshot
// whose protection has expired once the snapshot is removed.
func (r *Repository) RemoveProtections(ctx context.Context, snapshot ID) (int, error) {
	ps, err := r.Protections(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.Snapshot != snapshot {
			continue
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.ProtectFile, Name: p.ID.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return n, fmt.Errorf("unprotect snapshot %s: remove %s: %w", snapshot.Str(), p.ID.Str(), err)
		}
		n++
	}
	return n, nil
}
