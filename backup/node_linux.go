package backup

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// oNoatime keeps reading a file from updating its atime. Only the owner
// (or a process with CAP_FOWNER) may use it; openFile falls back without.
const oNoatime = unix.O_NOATIME

// statTimes returns the access, modification and status change times of st.
func statTimes(st *syscall.Stat_t) (atime, mtime, ctime time.Time) {
	return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())
}

// dataRanges returns the data ranges of a sparse file of the given size
// (SEEK_DATA/SEEK_HOLE), or nil, false when the file is not sparse or the
// file system cannot tell.
func dataRanges(f *os.File, fi fs.FileInfo) ([][2]int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	size := fi.Size()
	if !ok || size == 0 || st.Blocks*512 >= size {
		return nil, false
	}
	fd := int(f.Fd())
	var out [][2]int64
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, false
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, false
		}
		hole = min(hole, size)
		if data >= hole {
			break
		}
		out = append(out, [2]int64{data, hole})
		off = hole
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, false
	}
	return out, true
}
