// Package all registers every disk image format bunker reads and writes.
// Import it for its side effect:
//
//	import _ "github.com/bunkerbackup/bunker/vmdisk/all"
//
// after which vmdisk.Open detects VMDK, VHD, VHDX, qcow2, block devices and
// raw files by their content, and vmdisk.Create writes the formats that have
// writers.
package all

import (
	_ "github.com/bunkerbackup/bunker/vmdisk/qcow2"
	_ "github.com/bunkerbackup/bunker/vmdisk/raw"
	_ "github.com/bunkerbackup/bunker/vmdisk/vhd"
	_ "github.com/bunkerbackup/bunker/vmdisk/vhdx"
	_ "github.com/bunkerbackup/bunker/vmdisk/vmdk"
)
