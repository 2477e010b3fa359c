package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// SameTags reports whether a and b hold the same tags, in any order and
// ignoring repeats.
func SameTags(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// Retag gives sn the tags and returns the snapshot that has them. A
// snapshot is named by its bytes and never rewritten, so a snapshot whose
// tags change is replaced by a new one: the same record with the new tags
// and Original set to the first original (sn.Original, else sn.ID). In this
// order:
//
//  1. the new snapshot is saved;
//  2. every protection of sn is saved again for the new snapshot;
//  3. sn is removed, then its protection files.
//
// A crash between 1 and 3 leaves both snapshots, each valid, and sn still
// protected. When step 1 or 2 fails, what was written is removed again and
// sn is left as it was. When the tags do not change (SameTags), sn itself
// is returned and nothing is written.
//
// Call it holding the exclusive lock: it removes a snapshot.
func (r *Repository) Retag(ctx context.Context, sn *Snapshot, tags []string) (*Snapshot, error) {
	if SameTags(sn.Tags, tags) {
		return sn, nil
	}
	if sn.ID.IsNull() {
		return nil, errors.New("retag snapshot: no id")
	}
	// Read the protections first: a snapshot whose protections cannot be
	// read is not replaced, or it could lose them.
	all, err := r.Protections(ctx)
	if err != nil {
		return nil, fmt.Errorf("retag snapshot %s: %w", sn.ID.Str(), err)
	}
	var ps []*Protection
	for _, p := range all {
		if p.Snapshot == sn.ID {
			ps = append(ps, p)
		}
	}

	nsn := *sn
	nsn.ID = ID{}
	nsn.Tags = slices.Clone(tags)
	if len(nsn.Tags) == 0 {
		nsn.Tags = nil
	}
	orig := sn.ID
	if sn.Original != nil {
		orig = *sn.Original
	}
	nsn.Original = &orig
	if _, err := r.SaveSnapshot(ctx, &nsn); err != nil {
		return nil, fmt.Errorf("retag snapshot %s: %w", sn.ID.Str(), err)
	}
	if nsn.ID == sn.ID {
		// Cannot happen (the tags differ), but never remove what was saved.
		return &nsn, nil
	}

	var moved []ID
	for _, p := range ps {
		np := *p
		np.Snapshot = nsn.ID
		np.ID = ID{}
		if _, err := r.SaveProtection(ctx, &np); err != nil {
			err = fmt.Errorf("retag snapshot %s: move protection %s: %w", sn.ID.Str(), p.ID.Str(), err)
			return nil, errors.Join(err, r.undoRetag(ctx, nsn.ID, moved))
		}
		moved = append(moved, np.ID)
	}

	if err := r.RemoveSnapshot(ctx, sn.ID); err != nil {
		// Both snapshots stay, each protected as sn was.
		return &nsn, fmt.Errorf("retag snapshot %s: saved %s, but the old snapshot stays: %w", sn.ID.Str(), nsn.ID.Str(), err)
	}
	for _, p := range ps {
		if err := r.RemoveProtection(ctx, p.ID); err != nil {
			// A protection of a missing snapshot is harmless.
			return &nsn, fmt.Errorf("retag snapshot %s: %w", sn.ID.Str(), err)
		}
	}
	return &nsn, nil
}

// undoRetag removes the snapshot and protections a failed Retag saved.
func (r *Repository) undoRetag(ctx context.Context, snap ID, protections []ID) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, id := range protections {
		errs = append(errs, r.RemoveProtection(ctx, id))
	}
	if err := r.RemoveSnapshot(ctx, snap); err != nil {
		errs = append(errs, fmt.Errorf("%w (both snapshots stay: forget %s)", err, snap.Str()))
	}
	return errors.Join(errs...)
}
