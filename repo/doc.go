// Package repo implements the bunker repository: an encrypted,
// deduplicating, content-addressed store on top of a [backend.Backend].
//
// # Files
//
// Every file of a repository except the config is named by the unkeyed
// BLAKE3-256 hash of its stored bytes, so damage is found without the
// password. Every file except key files is sealed with the master key
// (XChaCha20-Poly1305).
//
// # Blob
//
// A blob is a piece of plaintext: a chunk of file or disk content (a data
// blob) or metadata (a tree blob: a directory as JSON, or a disk chunk list).
// A blob is identified by the BLAKE3 hash of its plaintext keyed with a
// secret from the master key, so ids reveal nothing to someone without the
// password.
//
// # Pack
//
// A pack is a file in data/ holding many blobs, each compressed (when it
// pays) and sealed on its own, followed by a sealed header that lists them.
// Data and tree blobs go to separate packs.
//
// # Index
//
// Index files list which pack holds which blob. [Open] loads them into a
// compact in-memory index; blobs are never looked up by reading packs.
//
// # Ordering
//
// Writers store packs first, then the index files that name them, then the
// snapshot that references the blobs, so a crash never leaves a snapshot
// that references missing data. docs/design.md specifies the format byte by
// byte.
package repo
