package schedule

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SystemZone returns the time zone cron runs in on the system under root:
// the zone of root's /etc/localtime, which cron daemons use, not the TZ
// variable of the shell that installs the lines (sudo keeps TZ, and a zoned
// guard computed for the wrong zone would never fire). It falls back to
// time.Local when the file is missing or cannot be read.
func SystemZone(root string) *time.Location {
	path := filepath.Join(root, "etc", "localtime")
	name := "localtime"
	if target, err := os.Readlink(path); err == nil {
		if i := strings.Index(target, "zoneinfo/"); i >= 0 {
			name = target[i+len("zoneinfo/"):]
		}
		if filepath.IsAbs(target) {
			// An absolute link means a path on the system under root.
			path = filepath.Join(root, target)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Local
	}
	loc, err := time.LoadLocationFromTZData(name, data)
	if err != nil {
		return time.Local
	}
	return loc
}
