// Package restore writes the content of snapshots back to targets.
//
// Two target shapes exist. A file tree (a snapshot's root tree) is restored
// into a directory by [Files]: regular files, directories, symlinks, hard
// links, FIFOs and device nodes, with their modes, owners, times and
// extended attributes. A disk (a snapshot's chunk list) is restored by
// [Disk] into a [vmdisk.Writer] (a sparse raw file, a VMDK, a VHD or a
// device), by [DiskRange] for a single partition, by [DiskDelta] (and
// [DiskDeltaRange] for a partition) onto an existing image or device
// writing only the 4 KiB blocks that differ, and streamed by [DumpDisk].
// [DiskReader] exposes a snapshot's disk as a [vmdisk.Image] for reading
// partition tables, and [VerifyDisk] and [VerifyDiskRange] re-read a
// written target, reading only what the target has allocated (a sparse
// file's data ranges, an image's extents). [FileOptions.DryRun] plans a
// file restore without writing. [Lookup] finds one path of a snapshot and
// [Finder] searches snapshots' file trees for names matching patterns.
//
// Holes are never written: file and disk targets are sized first, so the
// ranges a snapshot records as holes stay sparse.
//
// Blobs are fetched and decrypted by a pool of workers (GOMAXPROCS by
// default) while earlier data is written. File chunks are written with
// WriteAt as they arrive, in any order; disk chunks are written in
// ascending offset order, as container writers need, with a bounded number
// of blobs in flight.
//
// A damaged blob does not stop a restore. The OnError callback of the
// options receives the affected path (or disk range); when it returns nil
// the restore continues with everything else and finally returns an
// [*IncompleteError] listing what could not be restored. A nil OnError
// aborts on the first error.
//
// The package needs only three repository methods, collected in [Repo];
// *repo.Repository implements them.
package restore
