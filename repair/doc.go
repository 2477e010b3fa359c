// Package repair gets a damaged repository back into a state that check
// accepts and restore can use, losing as little as possible.
//
// Damage comes in two layers, and each has its own repair:
//
// # Index
//
// The index is derived data: every pack carries a sealed header listing its
// blobs, so the index can always be rebuilt from the packs. [Index] reads the
// header of every pack, builds a complete new index from them and writes it
// superseding every existing index file, then removes the old files. A lost
// or damaged index file, a pack the index does not know and an index entry
// whose pack is gone are all mended this way. With ReadAllPacks every blob
// is also decrypted and checked against its id, and damaged blobs are left
// out of the new index, so that [Snapshots] sees them as missing.
//
// A pack whose header cannot be read is reported and left alone: it is
// never deleted (the user decides), and the blobs an old index file placed
// in it stay indexed, because their data may well be intact.
//
// # Snapshots
//
// A snapshot whose trees, chunk lists or file contents are missing cannot be
// restored whole. [Snapshots] writes a repaired copy that leaves out what is
// lost: a file with missing content is removed, a directory whose tree is
// missing or damaged becomes an empty directory, and a disk with a missing
// chunk list or chunk is removed (a disk is never restored with zeroed
// ranges in place of lost data). The copy keeps the original's time, host,
// paths and tags, adds the tag "repaired", records the original's id and
// lists what was removed in its warnings. The original is removed only when
// asked (Forget), and never when it is protected or younger than the
// repository's minimum retention period.
//
// # Order
//
// Both repairs write everything new before they remove anything old, and
// remove only while the caller's exclusive lock is held, so an interruption
// at any point leaves a repository that check accepts (or that shows the
// damage it showed before), and running the repair again finishes it.
package repair
