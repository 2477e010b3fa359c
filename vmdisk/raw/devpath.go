package raw

import (
	"errors"
	"io/fs"
	"strings"
)

// isWindowsDevicePath reports whether path names a Windows device rather
// than a file: it is in the \\.\ or \\?\ namespace, and is not an existing
// regular file or directory, nor a path not yet created that goes through
// a drive, share or volume to a file (\\?\C:\new.raw). Devices
// (\\.\PhysicalDrive1, \\.\C:, \\?\Volume{guid}) have no separator after
// their name. It is written for Windows but holds no system calls, so it
// is tested everywhere.
func isWindowsDevicePath(path string, stat func(string) (fs.FileInfo, error)) bool {
	p := strings.ReplaceAll(path, "/", `\`)
	if !strings.HasPrefix(p, `\\.\`) && !strings.HasPrefix(p, `\\?\`) {
		return false
	}
	fi, err := stat(path)
	if err == nil {
		return !fi.Mode().IsRegular() && !fi.IsDir()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return true
	}
	rest := strings.TrimRight(p[4:], `\`)
	return !strings.Contains(rest, `\`)
}

// onDisk reports whether a mount source as macOS's getfsstat gives it
// (/dev/disk2s1, or "snapshot@/dev/disk3s1" for an APFS snapshot) is the
// disk named disk (disk2) or one of its slices (disk2s1, not disk22s1).
// It is used on macOS and tested everywhere.
func onDisk(from, disk string) bool {
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		from = from[i+1:]
	}
	dev, ok := strings.CutPrefix(from, "/dev/")
	if !ok {
		return false
	}
	dev = strings.TrimPrefix(dev, "r")
	if dev == disk {
		return true
	}
	rest, ok := strings.CutPrefix(dev, disk+"s")
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
