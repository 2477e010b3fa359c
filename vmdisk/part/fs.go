package part

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// DetectFilesystem names the filesystem (or other volume content) in the
// size bytes of r by its superblock magic, with its label and UUID where
// known. Types: ext2, ext3, ext4, xfs, btrfs, fat12, fat16, fat32, exfat,
// ntfs, swap, lvm2, luks, iso9660, jbd (an ext3/4 external journal);
// "unknown" otherwise.
func DetectFilesystem(r io.ReaderAt, size int64) (fstype, label, uuid string) {
	v := volume{r: r, size: size}
	for _, d := range detectors {
		if t, l, u := d(v); t != "" {
			return t, l, u
		}
	}
	return "unknown", "", ""
}

// volume reads bounded pieces of a partition.
type volume struct {
	r    io.ReaderAt
	size int64
}

// at returns n bytes at off, or nil when they are outside the volume or
// unreadable.
func (v volume) at(off, n int64) []byte {
	if off < 0 || n < 0 || off+n > v.size {
		return nil
	}
	b := make([]byte, n)
	if k, _ := v.r.ReadAt(b, off); k < len(b) {
		return nil
	}
	return b
}

var detectors = []func(volume) (string, string, string){
	detectLUKS, detectLVM, detectSwap, detectXFS, detectBtrfs, detectExt,
	detectISO9660, detectNTFS, detectExFAT, detectFAT,
}

var le = binary.LittleEndian

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " ")
}

func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func detectExt(v volume) (string, string, string) {
	sb := v.at(1024, 1024)
	if sb == nil || le.Uint16(sb[56:]) != 0xef53 {
		return "", "", ""
	}
	compat, incompat, ro := le.Uint32(sb[92:]), le.Uint32(sb[96:]), le.Uint32(sb[100:])
	const (
		hasJournal   = 0x4
		ext2Incompat = 0x02 | 0x10        // filetype, meta_bg
		ext3Incompat = 0x02 | 0x04 | 0x10 // + recover
		ext3RO       = 0x1 | 0x2 | 0x4    // sparse_super, large_file, btree_dir
	)
	t := "ext4"
	switch {
	case incompat&0x8 != 0:
		t = "jbd" // external journal device
	case ro&^ext3RO != 0 || incompat&^ext3Incompat != 0:
	case compat&hasJournal != 0:
		t = "ext3"
	case incompat&^ext2Incompat == 0:
		t = "ext2"
	}
	return t, cstr(sb[120:136]), uuidString(sb[104:120])
}

func detectXFS(v volume) (string, string, string) {
	sb := v.at(0, 512)
	if sb == nil || string(sb[:4]) != "XFSB" {
		return "", "", ""
	}
	return "xfs", cstr(sb[108:120]), uuidString(sb[32:48])
}

func detectBtrfs(v volume) (string, string, string) {
	sb := v.at(64<<10, 4096)
	if sb == nil || string(sb[64:72]) != "_BHRfS_M" {
		return "", "", ""
	}
	return "btrfs", cstr(sb[299:555]), uuidString(sb[32:48])
}

func detectLUKS(v volume) (string, string, string) {
	h := v.at(0, 512)
	if h == nil || string(h[:6]) != "LUKS\xba\xbe" {
		return "", "", ""
	}
	label := ""
	if binary.BigEndian.Uint16(h[6:]) == 2 {
		label = cstr(h[24:72])
	}
	return "luks", label, cstr(h[168:208])
}

func detectLVM(v volume) (string, string, string) {
	for s := int64(0); s < 4; s++ {
		l := v.at(s*512, 512)
		if l == nil || string(l[:8]) != "LABELONE" || string(l[24:32]) != "LVM2 001" {
			continue
		}
		off := int(le.Uint32(l[20:]))
		if off < 32 || off+32 > len(l) {
			return "lvm2", "", ""
		}
		u := string(l[off : off+32])
		return "lvm2", "", u[0:6] + "-" + u[6:10] + "-" + u[10:14] + "-" + u[14:18] + "-" + u[18:22] + "-" + u[22:26] + "-" + u[26:32]
	}
	return "", "", ""
}

func detectSwap(v volume) (string, string, string) {
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		sig := v.at(page-10, 10)
		if sig == nil {
			return "", "", ""
		}
		switch string(sig) {
		case "SWAPSPACE2":
			h := v.at(1024, 44)
			if h == nil {
				return "swap", "", ""
			}
			return "swap", cstr(h[28:44]), uuidString(h[12:28])
		case "SWAP-SPACE":
			return "swap", "", ""
		}
	}
	return "", "", ""
}

func detectISO9660(v volume) (string, string, string) {
	pvd := v.at(32768, 2048)
	if pvd == nil || string(pvd[1:6]) != "CD001" || pvd[0] != 1 {
		return "", "", ""
	}
	return "iso9660", cstr(pvd[40:72]), ""
}

func detectExFAT(v volume) (string, string, string) {
	bs := v.at(0, 512)
	if bs == nil || string(bs[3:11]) != "EXFAT   " {
		return "", "", ""
	}
	serial := le.Uint32(bs[100:])
	return "exfat", exfatLabel(v, bs), fmt.Sprintf("%04X-%04X", serial>>16, serial&0xffff)
}

// exfatLabel reads the volume label entry (type 0x83) from the first
// cluster of the root directory.
func exfatLabel(v volume, bs []byte) string {
	sectorShift, clusterShift := bs[108], bs[109]
	if sectorShift < 9 || sectorShift > 12 || clusterShift > 25-sectorShift {
		return ""
	}
	heap := int64(le.Uint32(bs[88:])) << sectorShift
	root := int64(le.Uint32(bs[96:]))
	clusterSize := int64(1) << (sectorShift + clusterShift)
	if root < 2 {
		return ""
	}
	dir := v.at(heap+(root-2)*clusterSize, min(clusterSize, 64<<10))
	for i := 0; i+32 <= len(dir); i += 32 {
		switch e := dir[i:]; e[0] {
		case 0x00:
			return "" // end of directory
		case 0x83:
			n := min(int(e[1]), 11)
			return utf16Name(e[2 : 2+2*n])
		}
	}
	return ""
}

func detectFAT(v volume) (string, string, string) {
	bs := v.at(0, 512)
	if bs == nil || bs[510] != 0x55 || bs[511] != 0xaa || (bs[0] != 0xeb && bs[0] != 0xe9) {
		return "", "", ""
	}
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	fats := int64(bs[16])
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 || reserved == 0 || fats == 0 || fats > 4 || bs[21] < 0xf0 && bs[21] != 0 {
		return "", "", ""
	}
	rootEntries := int64(le.Uint16(bs[17:]))
	total := int64(le.Uint16(bs[19:]))
	if total == 0 {
		total = int64(le.Uint32(bs[32:]))
	}
	fatSize := int64(le.Uint16(bs[22:]))
	fat32 := fatSize == 0
	if fat32 {
		fatSize = int64(le.Uint32(bs[36:]))
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	data := total - reserved - fats*fatSize - rootSectors
	if fatSize == 0 || data <= 0 {
		return "", "", ""
	}
	clusters := data / spc
	t := "fat32"
	switch {
	case fat32:
	case clusters < 4085:
		t = "fat12"
	case clusters < 65525:
		t = "fat16"
	}
	sigAt := 38
	if t == "fat32" {
		sigAt = 66
	}
	if bs[sigAt] != 0x29 && bs[sigAt] != 0x28 {
		return t, "", ""
	}
	id := le.Uint32(bs[sigAt+1:])
	label := ""
	if bs[sigAt] == 0x29 {
		if label = cstr(bs[sigAt+5 : sigAt+16]); label == "NO NAME" {
			label = ""
		}
	}
	return t, label, fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)
}

func detectNTFS(v volume) (string, string, string) {
	bs := v.at(0, 512)
	if bs == nil || string(bs[3:11]) != "NTFS    " {
		return "", "", ""
	}
	uuid := fmt.Sprintf("%016X", le.Uint64(bs[0x48:]))
	return "ntfs", ntfsLabel(v, bs), uuid
}

// ntfsLabel reads the volume name from MFT record 3 ($Volume).
func ntfsLabel(v volume, bs []byte) string {
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	if spc > 0x80 {
		spc = 1 << (256 - spc)
	}
	if bps < 256 || bps > 4096 || spc == 0 || spc > 1<<12 {
		return ""
	}
	cluster := bps * spc
	var recSize int64
	if c := int8(bs[0x40]); c > 0 {
		recSize = int64(c) * cluster
	} else if c < 0 && c > -32 {
		recSize = 1 << -c
	}
	mft := int64(le.Uint64(bs[0x30:]))
	if recSize < 512 || recSize > 64<<10 || mft <= 0 || mft > v.size/cluster {
		return ""
	}
	rec := v.at(mft*cluster+3*recSize, recSize)
	if rec == nil || string(rec[:4]) != "FILE" {
		return ""
	}
	// Undo the update sequence fixups at the end of each sector.
	usaOff, usaCount := int(le.Uint16(rec[4:])), int(le.Uint16(rec[6:]))
	if usaCount < 1 || usaOff+2*usaCount > len(rec) {
		return ""
	}
	stride := int(recSize) / max(usaCount-1, 1)
	for i := 1; i < usaCount; i++ {
		end := i*stride - 2
		if end < 0 || end+2 > len(rec) || !bytes.Equal(rec[end:end+2], rec[usaOff:usaOff+2]) {
			return ""
		}
		copy(rec[end:end+2], rec[usaOff+2*i:])
	}
	for off := int(le.Uint16(rec[0x14:])); off+24 <= len(rec); {
		typ, length := le.Uint32(rec[off:]), int(le.Uint32(rec[off+4:]))
		if typ == 0xffffffff || length < 24 || off+length > len(rec) {
			return ""
		}
		if typ == 0x60 && rec[off+8] == 0 { // resident $VOLUME_NAME
			clen, coff := int(le.Uint32(rec[off+0x10:])), int(le.Uint16(rec[off+0x14:]))
			if coff+clen > length {
				return ""
			}
			return utf16Name(rec[off+coff : off+coff+clen])
		}
		off += length
	}
	return ""
}
