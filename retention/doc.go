// Package retention decides which snapshots a retention policy keeps.
//
// It is a pure function of the snapshots, the policy and the current time:
// [Apply] groups the snapshots (by host, paths or disks, tags, job), applies
// the keep rules of a [Policy] to each group with restic's calendar
// semantics, then enforces the guarantees of [Options] (minimum retention,
// protected snapshots, never emptying a group by accident). It reads and
// writes nothing; the caller removes what the result says to remove.
//
// # Rules
//
// Snapshots of a group are visited newest first. A bucket rule (keep-last,
// -hourly, -daily, -weekly, -monthly, -yearly N) keeps the newest snapshot of
// each of the N most recent buckets (hour, day, ISO week, month, year) that
// hold a snapshot. Buckets are calendar periods in the snapshot's local time:
// the time zone offset recorded with the snapshot, or Options.Location when
// set. keep-within D keeps every snapshot less than D older than the group's
// newest snapshot (not than now, as in restic: a job that stopped backing up
// does not thin its own history away). keep-within-hourly/daily/... D keeps
// the newest snapshot of each bucket within D, keep-within-every D:W the
// newest of each W-wide slice of local wall-clock time within D (for example
// one per 4 hours within 48 hours). keep-tag keeps snapshots that carry all
// tags of one of its lists. Rules combine as a union: a snapshot is kept when
// any rule keeps it. MaxAge is the one removing rule: a snapshot older than
// MaxAge (measured from now) is removed even when a keep rule matches it.
//
// # Guarantees
//
// After the rules, in this order:
//   - a group whose snapshots the rules would all remove is refused (nothing
//     of it is removed) unless AllowEmpty is set;
//   - a protected snapshot is never removed;
//   - a snapshot younger than the minimum retention period is never removed;
//   - the newest snapshot of a group is never removed unless AllowEmpty;
//   - nor, unless AllowEmpty, the newest of a source (host and paths, disks
//     or job), which matters when the groups are wider than a source
//     (grouped by tags only, or not grouped at all).
//
// Every decision carries its reasons ("daily 2026-11-20", "within 7d",
// "tag monthly", "protected", "min-retention (younger than 30d)", ...). A
// snapshot that the rules (or [Forget]'s ids) would remove but a guarantee
// keeps is marked Guarded, so that a caller can tell "kept by the policy"
// from "kept although asked to remove it".
package retention
