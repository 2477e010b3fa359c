// Package drill restore-tests a snapshot: it restores everything the
// snapshot holds into a scratch directory, verifies it independently of the
// restore, measures how long both took and removes the scratch copy.
//
// A drill answers the question a backup alone cannot: can this snapshot be
// restored, and how long would it take? Every file tree is restored with
// restore.Files and then re-read file by file, each chunk compared with its
// blob id and each hole with zeros, symbolic links with their targets. Every
// disk is restored with restore.Disk into a sparse raw file (the whole-disk
// digest is checked while writing) and then re-read with restore.VerifyDisk.
// With Options.Format set, each disk is also written into that container
// (vmdk or vhd) and verified by reading the container back, which exercises
// the container writer a real recovery would use.
//
// Restore time and verify time are measured separately per item: the restore
// time is the recovery time an operator can expect on this machine and
// storage, the verify time is what checking costs on top.
//
// Before anything is written the free space of the scratch file system is
// compared with what the drill needs: the data bytes of files and disks
// (holes stay sparse), rounded to the allocation units of file systems and
// containers. Items are removed as soon as they are verified unless
// Options.Keep is set, so without Keep the largest item must fit, with Keep
// all of them.
//
// Run never prints. Failures of single items (a damaged blob, a digest that
// differs) are recorded in the Report, which Run returns with a nil error;
// Run fails only when the drill cannot take place at all (no space, the
// scratch directory cannot be made, cancellation).
package drill
