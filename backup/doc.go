// Package backup reads file trees and disks and stores them as a snapshot.
//
// # Pipeline
//
// One walker goroutine lists directories in bytewise name order and builds
// the nodes of the tree. Regular files that must be read go to a few reader
// goroutines (GOMAXPROCS of them), each of which reads its file and cuts it
// with the canonical segmentation of package chunk: zero runs become holes,
// data runs are chunked by content. Every chunk goes through a bounded
// queue to a pool of GOMAXPROCS savers that compute the keyed blob id and
// call SaveBlob, which compresses and encrypts in the saver's goroutine. So
// chunking, hashing, compression and encryption overlap, and a single large
// file keeps both cores busy: its reader chunks while the savers compress.
// Memory is bounded by the queue length and the chunk buffer pool; no file
// is ever held in memory.
//
// Results are put back in order without waiting: every file and directory
// counts its outstanding chunks and children; whichever goroutine completes
// the last one finishes the object (a file's content list, a directory's
// tree blob) and reports to its parent. The root tree completes last.
//
// Disks are read by one goroutine per disk in large blocks, skipping the
// ranges the container reports unallocated. A second goroutine computes the
// whole-disk BLAKE3 digest over the same blocks (holes hashed as zeros),
// and a third segments and chunks them; chunks go to the same saver pool.
// The chunk list is saved in blobs of 16384 entries as they fill up, so a
// 2 TiB disk needs neither a huge document nor a huge amount of memory.
//
// # Incremental backups
//
// With a parent snapshot, the walker loads the parent's tree for each
// directory alongside the walk. A regular file whose size, mtime, ctime and
// inode equal those of the parent's node of the same name keeps the parent's
// content list without being opened. A disk image file whose size, mtime and
// inode equal those recorded in the parent's disk of the same name keeps the
// parent's disk record without being read.
//
// # Metadata
//
// Nodes record type, permissions, owner and group (ids and names), mtime,
// ctime, inode, device, link count (so restore can re-link hard links),
// device numbers, link targets and extended attributes. Atime is recorded
// for regular files only, which are read with O_NOATIME on Linux: listing a
// directory or reading a link updates its atime, which would change every
// tree on every backup. A file with several hard links is read once per
// backup; its other names take the content of the first. Darwin, FreeBSD
// and NetBSD record the same metadata; other systems (Windows) record
// type, permissions, size, mtime and link targets only.
//
// # Tree layout
//
// The root tree mirrors the absolute source paths: backing up /home/a and
// /etc gives a root tree with the directories "home" (holding only "a") and
// "etc". Intermediate directories carry their own metadata.
//
// # Errors
//
// A source that cannot be read (permission denied, vanished, I/O error) is
// reported to Options.Warn and left out of the snapshot, which is still
// written, with Incomplete set and the messages in Warnings. Repository
// errors and cancellation abort the backup; nothing is referenced before
// Flush has written the packs and index.
package backup
