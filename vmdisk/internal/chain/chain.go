// Package chain holds what the formats whose images may stand on a parent
// (a backing file: qcow2, VMDK, VHD and VHDX differencing disks) share
// about such a chain of images.
package chain

import "github.com/bunkerbackup/bunker/vmdisk"

// Inherit adds to the Info of a child image what it takes from its
// parent's: the parent's files after its own, and the parent's in-use
// state with its reasons.
func Inherit(child *vmdisk.Info, parent vmdisk.Info) {
	child.Files = append(child.Files, parent.Files...)
	if parent.InUse {
		child.InUse = true
		child.Reasons = append(child.Reasons, parent.Reasons...)
	}
}
