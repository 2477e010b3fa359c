//go:build !linux && !darwin

package raw

import "testing"

// holeMap says whether DataExtents finds holes on this system.
const holeMap = false

// allocatedBytes reports that the allocation of path is not known here.
func allocatedBytes(t *testing.T, path string) (int64, bool) { return 0, false }
