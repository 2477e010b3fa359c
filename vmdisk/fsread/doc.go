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
//   - ext2/3/4: the superblock, inode and block-map structures of
//     github.com/masahiro331/go-ext4-filesystem; inode lookup, directory
//     scanning, the extent tree walk and file reads are ours, because the
//     library's path lookup resolves symlinks against the wrong directory,
//     its directories cannot be opened, and its reader is not safe for
//     concurrent use. Holes and unwritten extents of sparse files read as
//     zeros; a journal that still needs recovery is not replayed.
//   - FAT12/16/32: github.com/diskfs/go-diskfs for directories (long names
//     included); file data is read through each file's cluster chain. The
//     FAT is checked for cluster-chain loops when the volume is opened.
//   - NTFS: www.velocidex.com/golang/go-ntfs (resident, non-resident, sparse
//     and compressed $DATA; alternate data streams and the root's $-metafiles
//     are not listed; reparse points are shown as what they sit on).
//   - XFS: github.com/masahiro331/go-xfs-filesystem.
//
// These parsers read untrusted bytes: every call into a driver runs under the
// file system's lock with panics turned into errors, and errors name the
// partition-relative path. Calls are serialised per FS; an FS and its Files
// are safe for concurrent use.
package fsread
