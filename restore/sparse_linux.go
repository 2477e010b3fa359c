package restore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// dataSegments returns the parts of [off, off+n) of the regular file f
// that hold data, by SEEK_DATA and SEEK_HOLE; on error the whole range.
func dataSegments(f *os.File, off, n int64) []vmdisk.Extent {
	fd := int(f.Fd())
	end := off + n
	var segs []vmdisk.Extent
	for pos := off; pos < end; {
		d, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) || (err == nil && d >= end) {
			break
		}
		if err != nil {
			return []vmdisk.Extent{{Offset: pos, Length: end - pos}}
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil || h > end {
			h = end
		}
		if h <= d {
			return append(segs, vmdisk.Extent{Offset: d, Length: end - d})
		}
		segs = append(segs, vmdisk.Extent{Offset: d, Length: h - d})
		pos = h
	}
	return segs
}

// punchHole deallocates [off, off+n) of f, keeping its size; the range
// then reads as zeros.
func punchHole(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// adviseSequential tells the kernel that f will be read from start to end,
// so that it reads ahead further. Advice only: errors are ignored.
func adviseSequential(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
}
