package backup

import "github.com/bunkerbackup/bunker/vmdisk"

// diskDigest is the whole-disk digest of content (vmdisk.Digest).
func diskDigest(content []byte) string {
	d := vmdisk.NewDigest()
	d.Write(content)
	return d.Sum()
}
