//go:build !linux && !darwin

package raw

import (
	"os"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// DataExtents returns [start, end) as one data range: this system offers no
// hole map through lseek. The chunker still finds the zero runs and
// records them as holes; only the reading of them is not skipped.
func DataExtents(f *os.File, start, end int64) ([]vmdisk.Extent, error) {
	if start >= end {
		return nil, nil
	}
	return []vmdisk.Extent{{Offset: start, Length: end - start}}, nil
}
