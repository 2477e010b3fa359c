//go:build darwin || freebsd || netbsd

package backup

import (
	"io/fs"
	"os"
	"syscall"
	"time"
)

// oNoatime is zero: these systems have no open flag that keeps reading a
// file from updating its atime.
const oNoatime = 0

// statTimes returns the access, modification and status change times of st.
func statTimes(st *syscall.Stat_t) (atime, mtime, ctime time.Time) {
	return time.Unix(st.Atimespec.Unix()), time.Unix(st.Mtimespec.Unix()), time.Unix(st.Ctimespec.Unix())
}

// dataRanges reports no ranges: files are read whole, and zero runs still
// become holes in the repository.
func dataRanges(f *os.File, fi fs.FileInfo) ([][2]int64, bool) { return nil, false }
