//go:build !linux

package restore

import (
	"errors"
	"os"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// dataSegments returns the whole range: holes cannot be found here.
func dataSegments(f *os.File, off, n int64) []vmdisk.Extent {
	return []vmdisk.Extent{{Offset: off, Length: n}}
}

var errNoPunch = errors.New("punching holes is not supported on this system")

// punchHole is not available; callers write zeros instead.
func punchHole(f *os.File, off, n int64) error { return errNoPunch }

// adviseSequential does nothing here.
func adviseSequential(f *os.File) {}
