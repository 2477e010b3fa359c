package raw

import (
	"fmt"
	"os"
)

// devicePathError refuses Windows device paths (\\.\PhysicalDrive0,
// \\.\C:, \\?\Volume{...}): bunker reads and writes image files only on
// Windows, and a device opened as a file would be read or written in
// pieces the device does not accept. Files in those namespaces
// (\\?\C:\dir\disk.vhdx, a shadow copy's files) are allowed.
func devicePathError(path string) error {
	if !isWindowsDevicePath(path, os.Stat) {
		return nil
	}
	return fmt.Errorf("open %s: %w", path, errNoDevices)
}
