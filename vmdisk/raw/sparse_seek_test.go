//go:build linux || darwin

package raw

import (
	"testing"

	"golang.org/x/sys/unix"
)

// holeMap says whether DataExtents finds holes on this system.
const holeMap = true

// allocatedBytes returns the bytes the file system allocated for path.
func allocatedBytes(t *testing.T, path string) (int64, bool) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512, true
}
