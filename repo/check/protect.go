package check

import (
	"context"
	"fmt"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
)

// Kinds of problems with protections (docs/design.md §16).
const (
	ProtectionDamaged  Kind = "protection_damaged"  // a protection file cannot be loaded: forget refuses to run
	ProtectionOrphaned Kind = "protection_orphaned" // a protection names a snapshot that does not exist
)

// checkProtections loads every protection file: a damaged one is an error
// (forget refuses to decide without it), one naming a missing snapshot a
// warning.
func (c *checker) checkProtections(ctx context.Context) error {
	ids, err := c.r.ListFiles(ctx, backend.ProtectFile)
	if err != nil {
		return err
	}
	snaps, err := c.r.ListFiles(ctx, backend.SnapshotFile)
	if err != nil {
		return err
	}
	exists := make(map[repo.ID]bool, len(snaps))
	for _, id := range snaps {
		exists[id] = true
	}
	for _, id := range ids {
		file := "protect/" + id.String()
		p, err := c.r.LoadProtection(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.res.add(Problem{Severity: Error, Kind: ProtectionDamaged, File: file,
				Message: fmt.Sprintf("%s: %v (forget refuses to run until it is readable or removed)", file, err)})
			continue
		}
		if !exists[p.Snapshot] {
			c.res.add(Problem{Severity: Warning, Kind: ProtectionOrphaned, File: file,
				Message: fmt.Sprintf("%s protects snapshot %s, which does not exist", file, p.Snapshot.Str())})
		}
	}
	return nil
}
