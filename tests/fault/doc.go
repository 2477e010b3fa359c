// Package fault is an end-to-end fault-tolerance suite for the bunker
// command. Its tests build the real binary once and run it as a user would
// while things go wrong: the process is killed or interrupted mid-backup,
// the repository's disk fills up or turns read-only, sources vanish or
// cannot be read, repository files are corrupted or tampered with, disk
// images are truncated or broken. Each test asserts the exit status, that
// the error says what failed and where, and that no snapshot already
// written is harmed: `bunker check --read-data` passes and earlier snapshots
// restore byte for byte.
package fault
