// Package prune removes data that no snapshot references.
//
// Pruning is planned first and executed second. [NewPlan] finds every blob
// the snapshots use (file trees and contents, disk chunk lists and chunks)
// and classifies every pack: fully used packs are kept, packs with no used
// blob are deleted, and partly used packs are repacked, most wasteful first,
// until the unused data left is within Options.MaxUnused. [Plan.Execute]
// then carries the plan out in a crash-safe order:
//
//  1. copy the used blobs of the packs to repack into new packs;
//  2. write the new index (every kept and new pack) superseding all old
//     index files;
//  3. remove the old index files;
//  4. remove the repacked, unused and unindexed packs;
//  5. housekeeping that no snapshot depends on: when there are more than
//     [HistoryCompactAt] history files, write one file with all their
//     records and then remove the files merged into it; remove temporary
//     files older than [backend.StaleTempAge] that killed writers left behind.
//
// Nothing old is removed before everything new is stored, so an
// interruption at any point leaves a repository that check accepts (at
// worst with unreferenced packs, which a re-run removes). Blobs are copied
// sealed, after their content is verified, without re-encrypting.
//
// The caller holds the repository's exclusive lock for the whole run.
package prune
