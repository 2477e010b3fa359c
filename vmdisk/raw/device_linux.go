package raw

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openDevice opens the block device at path with flag plus O_EXCL. Linux
// refuses an exclusive open with EBUSY while a file system on the disk or
// on one of its partitions is mounted, or another program (LVM, md, a
// running restore) holds it exclusively; that is reported as ErrDeviceBusy.
func openDevice(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_EXCL, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, ErrDeviceBusy
	}
	return f, err
}

// deviceGeometry returns a block device's size (BLKGETSIZE64, else the
// seek end) and logical sector size (BLKSSZGET, else 512).
func deviceGeometry(f *os.File) (int64, int, error) {
	fd := int(f.Fd())
	size, err := unix.IoctlGetInt(fd, unix.BLKGETSIZE64)
	if err != nil || size <= 0 {
		end, serr := f.Seek(0, io.SeekEnd)
		if serr != nil {
			return 0, 0, fmt.Errorf("get device size: %w", errors.Join(err, serr))
		}
		size = int(end)
	}
	ssz, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil || !validSectorSize(ssz) {
		ssz = 512
	}
	return int64(size), ssz, nil
}

// zeroOut asks the kernel to zero n bytes at off (BLKZEROOUT), which
// devices with WRITE ZEROES or discard-zeroes do without data transfer.
func zeroOut(f *os.File, off, n int64) error {
	r := [2]uint64{uint64(off), uint64(n)}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r)))
	if errno != 0 {
		return errno
	}
	return nil
}

// syncDevice flushes the device's writes and its write cache.
func syncDevice(f *os.File) error { return f.Sync() }

// rereadPartitions asks the kernel to re-read the partition table
// (BLKRRPART); failures are ignored, not every device has partitions.
func rereadPartitions(f *os.File) {
	_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
}
