//go:build linux || darwin

package raw

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// DataExtents returns the data ranges of the regular file f within
// [start, end), found with SEEK_DATA/SEEK_HOLE and coalesced. When the file
// system does not support hole reporting, the whole range is returned.
// SEEK_DATA/SEEK_HOLE take absolute offsets, so concurrent calls and
// concurrent ReadAt calls on f are safe; f's file offset is changed.
func DataExtents(f *os.File, start, end int64) ([]vmdisk.Extent, error) {
	var out []vmdisk.Extent
	fd := int(f.Fd())
	off := start
	for off < end {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // no data after off
		}
		if err == unix.EINVAL || err == unix.EOPNOTSUPP {
			return []vmdisk.Extent{{Offset: start, Length: end - start}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("find data in %s: %w", f.Name(), err)
		}
		if data >= end {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("find hole in %s: %w", f.Name(), err)
		}
		if hole > end || hole <= data {
			hole = end
		}
		if n := len(out); n > 0 && out[n-1].End() == data {
			out[n-1].Length = hole - out[n-1].Offset
		} else {
			out = append(out, vmdisk.Extent{Offset: data, Length: hole - data})
		}
		off = hole
	}
	return out, nil
}
