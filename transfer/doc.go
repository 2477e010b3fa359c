// Package transfer copies snapshots from one repository into another.
//
// Blob ids are keyed with a secret of each repository's master key, so the
// same plaintext has different ids in two repositories, and nothing can be
// copied by id. A copy therefore re-keys everything: every data blob a
// snapshot references is loaded from the source, its id in the destination
// is computed (Repository.BlobID) and it is saved there unless the
// destination already has it. Trees are then rewritten bottom-up with the
// new ids of their chunks and subtrees, disk chunk lists likewise, and the
// snapshot is saved with the new root tree and chunk lists and everything
// else (time, host, paths, tags, summary) as it was. Chunk boundaries are
// kept: the destination's chunker polynomial is used only by its own
// backups.
//
// Ordering follows the repository rules: packs, then the index (Flush),
// then the snapshot, so an interrupted copy leaves at most unreferenced
// blobs.
//
// A copy is idempotent. A source snapshot counts as already copied when the
// destination holds a snapshot with the same time, host and paths whose
// content matches: each disk by name, size and whole-disk digest (repository
// independent), and the file tree node by node (names, types, metadata,
// sizes and the chunk and hole lengths of every file, every referenced blob
// present in the destination). Such snapshots are skipped without reading
// their data.
//
// Within one Copy call a source blob is loaded at most once: the mapping of
// source to destination ids is remembered (up to a bounded number of
// entries), so a series of incremental snapshots costs about as much as
// their distinct data.
package transfer
