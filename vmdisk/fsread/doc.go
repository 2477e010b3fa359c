// Package fsread opens the file system inside a partition read-only, as an
// io/fs.FS, so that single files and directories can be restored out of a
// disk backup without mounting anything.
//
// Open takes an io.ReaderAt over the partition's bytes, its size and the file
// system type that vmdisk/part detected ("ext2", "ext3", "ext4", "fat12",
// "fat16", "fat32", "ntfs", "xfs"). The returned *FS implements fs.FS,
// fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS. Names are slash-separated and
// relative to the file system's root, as io/fs wants ("etc/fstab", "." for
// the root). Open and Stat follow symbolic links (within the file system:
// an absolute target is resolved from the file system's root, never the
// host's); Lstat and ReadLink report a link itself. Opened regular files
// also implement io.ReaderAt and io.Seeker.
//
// One small driver per file system does the on-disk work:
//
//   - ext2/3/4: the superblock and inode layouts of
//     github.com/masahiro331/go-ext4-filesystem; inode lookup, directory
//     scanning (linear and htree directories alike), the extent tree,
//     indirect block maps and file reads are ours, bounded against
//     looping or oversized metadata, because the library's path lookup
//     resolves symlinks against the wrong directory, its directories cannot
//     be opened, its reader is not safe for concurrent use and its tree
//     walks have no bound. Holes and unwritten extents read as zeros; a
//     journal that still needs recovery is not replayed (Warnings says so).
//   - FAT12/16/32: github.com/diskfs/go-diskfs reads the directories (long
//     names included); file data is read through the FAT, which is checked
//     for cluster-chain loops when the volume is opened (the library would
//     follow one forever). Names are matched case-insensitively.
//   - NTFS: www.velocidex.com/golang/go-ntfs (resident, non-resident, sparse
//     and compressed $DATA). Alternate data streams and the root's
//     $-metafiles are not listed; reparse points (symlinks, junctions) show
//     as the file or directory they sit on. Names are matched
//     case-insensitively.
//   - XFS: github.com/masahiro331/go-xfs-filesystem for inodes and
//     directories; file data is read through the inode's extent records.
//     Only symlinks kept inside the inode can be read.
//
// The drivers' small metadata reads go through a 16 MiB page cache, since
// the partition may be a disk inside a backup whose every read costs a
// chunk. Extract copies a subtree to a local directory; OpenPartition finds
// a partition of a whole disk by number.
//
// These parsers read untrusted bytes: every call into a driver runs under the
// file system's lock with panics turned into errors, and errors name the
// partition-relative path. Calls are serialised per FS; an FS and its Files
// are safe for concurrent use.
package fsread
