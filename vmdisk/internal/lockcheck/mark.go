package lockcheck

import (
	"fmt"
	"os"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// Mark checks the image file f, opened from path, with [Check]. When
// another process holds it open for writing, Mark returns an error that
// wraps [vmdisk.ErrInUse], or with force records the reason in info
// (InUse, and "path: reason" in Reasons) and returns nil.
func Mark(f *os.File, path string, force bool, info *vmdisk.Info) error {
	reason, err := Check(f)
	if err != nil || reason == "" {
		return err
	}
	if !force {
		return fmt.Errorf("open %s: %s: %w", path, reason, vmdisk.ErrInUse)
	}
	info.InUse = true
	info.Reasons = append(info.Reasons, path+": "+reason)
	return nil
}
