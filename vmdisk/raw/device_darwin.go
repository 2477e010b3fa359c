package raw

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Disk ioctls from <sys/disk.h>: _IOR('d', 24, uint32_t) and
// _IOR('d', 25, uint64_t).
const (
	dkiocGetBlockSize  = 0x40046418
	dkiocGetBlockCount = 0x40086419
)

// openDevice opens the block device at path with flag unless a file system
// on it, or on one of its slices (disk2s1 for disk2), is mounted: that is
// reported as ErrDeviceBusy. macOS has no counterpart of Linux's exclusive
// open of a block device, and APFS volumes are mounted from synthesized disks, so a disk holding a
// mounted APFS container is not detected here; diskutil list shows those.
func openDevice(path string, flag int) (*os.File, error) {
	m, err := mountedFrom(path)
	if err != nil {
		return nil, err
	}
	if m != "" {
		return nil, fmt.Errorf("%w: %s", ErrDeviceBusy, m)
	}
	return os.OpenFile(path, flag, 0)
}

// mountedFrom returns "DEV is mounted on DIR" for the first mounted file
// system whose device is path or one of its slices, and "" when none is.
func mountedFrom(path string) (string, error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	name := filepath.Base(path)
	n, err := unix.Getfsstat(nil, unix.MNT_NOWAIT)
	if err != nil {
		return "", fmt.Errorf("list mounted file systems: %w", err)
	}
	// Room for mounts that appear between the two calls.
	buf := make([]unix.Statfs_t, n+16)
	n, err = unix.Getfsstat(buf, unix.MNT_NOWAIT)
	if err != nil {
		return "", fmt.Errorf("list mounted file systems: %w", err)
	}
	for _, st := range buf[:n] {
		from := unix.ByteSliceToString(st.Mntfromname[:])
		if onDisk(from, name) {
			return fmt.Sprintf("%s is mounted on %s", from, unix.ByteSliceToString(st.Mntonname[:])), nil
		}
	}
	return "", nil
}

// deviceGeometry returns a block device's size (DKIOCGETBLOCKCOUNT times
// DKIOCGETBLOCKSIZE, else the seek end) and logical sector size
// (DKIOCGETBLOCKSIZE, else 512). IoctlGetInt reads into a zeroed 64-bit
// int, which holds the 32-bit block size too: macOS runs little-endian.
func deviceGeometry(f *os.File) (int64, int, error) {
	fd := int(f.Fd())
	ssz, err := unix.IoctlGetInt(fd, dkiocGetBlockSize)
	if err != nil || !validSectorSize(ssz) {
		ssz = 512
	}
	count, err := unix.IoctlGetInt(fd, dkiocGetBlockCount)
	if err == nil && count > 0 {
		return int64(count) * int64(ssz), ssz, nil
	}
	end, serr := f.Seek(0, io.SeekEnd)
	if serr == nil && end > 0 {
		return end, ssz, nil
	}
	if err == nil {
		err = errors.New("DKIOCGETBLOCKCOUNT returned 0 blocks")
	}
	return 0, 0, fmt.Errorf("get device size: %w", errors.Join(err, serr))
}

// zeroOut is not offered: macOS has no zero-out request whose result is
// guaranteed to read as zeros, so the writer writes zeros.
func zeroOut(f *os.File, off, n int64) error { return errors.ErrUnsupported }

// syncDevice flushes the device's writes: F_FULLFSYNC (what f.Sync asks
// for on macOS) to empty the drive's cache too, else a plain fsync where
// the device refuses that request.
func syncDevice(f *os.File) error {
	err := f.Sync()
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENODEV) {
		err = unix.Fsync(int(f.Fd()))
	}
	return err
}

// rereadPartitions does nothing: macOS has no equivalent of Linux's
// BLKRRPART; the system sees a new partition table once the disk is
// re-attached (diskutil eject, then reconnect it).
func rereadPartitions(f *os.File) {}
