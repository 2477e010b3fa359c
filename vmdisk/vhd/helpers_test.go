package vhd

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
)

// vhdSpec describes a dynamic or differencing VHD built byte by byte, for
// what qemu-img cannot make (differencing disks, odd block sizes, damage).
type vhdSpec struct {
	size      int64
	blockSize int64
	diskType  uint32
	creator   string
	uid       [16]byte
	blocks    map[int64][]byte // block index -> blockSize bytes
	bitmaps   map[int64][]byte // block index -> sector bitmap (default all ones)
	parentUID [16]byte
	parent    string // UTF-16BE parent name
	locators  []locatorSpec
}

type locatorSpec struct {
	code string
	data []byte
}

func utf16Bytes(s string, order binary.ByteOrder) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		order.PutUint16(b[2*i:], c)
	}
	return b
}

func (s vhdSpec) build() []byte {
	if s.creator == "" {
		s.creator = "win "
	}
	if s.diskType == 0 {
		s.diskType = diskDynamic
	}
	c, h, spt := geometry(s.size)
	ft := footer{Features: 2, Version: 0x00010000, DataOffset: footerSize, CurrentSize: uint64(s.size), OriginalSize: uint64(s.size),
		Cylinders: c, Heads: h, SectorsPerTrk: spt, DiskType: s.diskType, UniqueID: s.uid}
	copy(ft.Creator[:], s.creator)
	n := (s.size + s.blockSize - 1) / s.blockSize
	bmSize := (s.blockSize/512/8 + 511) / 512 * 512
	hdr := dynHeader{TableOffset: 1536, HeaderVersion: 0x00010000, MaxTableEntries: uint32(n), BlockSize: uint32(s.blockSize), ParentUniqueID: s.parentUID}
	copy(hdr.ParentName[:], utf16Bytes(s.parent, binary.BigEndian))
	off := int64(1536) + (4*n+511)/512*512
	var tail bytes.Buffer
	for i, l := range s.locators {
		copy(hdr.Locators[i].Code[:], l.code)
		hdr.Locators[i].DataOffset = uint64(off)
		hdr.Locators[i].DataLength = uint32(len(l.data))
		hdr.Locators[i].DataSpace = uint32((len(l.data) + 511) / 512 * 512)
		d := make([]byte, (len(l.data)+511)/512*512)
		copy(d, l.data)
		tail.Write(d)
		off += int64(len(d))
	}
	bat := make([]byte, (4*n+511)/512*512)
	for i := range bat {
		bat[i] = 0xFF
	}
	for i := range n {
		d, ok := s.blocks[i]
		if !ok {
			continue
		}
		binary.BigEndian.PutUint32(bat[4*i:], uint32(off/512))
		bm, ok := s.bitmaps[i]
		if !ok {
			bm = bytes.Repeat([]byte{0xFF}, int(bmSize))
		}
		bmPad := make([]byte, bmSize)
		copy(bmPad, bm)
		tail.Write(bmPad)
		blk := make([]byte, s.blockSize)
		copy(blk, d)
		tail.Write(blk)
		off += bmSize + s.blockSize
	}
	fb := ft.marshal()
	var out bytes.Buffer
	out.Write(fb)
	out.Write(hdr.marshal())
	out.Write(bat)
	out.Write(tail.Bytes())
	out.Write(fb)
	return out.Bytes()
}
