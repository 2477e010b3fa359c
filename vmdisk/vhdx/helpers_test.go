package vhdx

// vhdxFile is a VHDX held in memory for patching in tests.
type vhdxFile []byte

func (b vhdxFile) region(id guid) (off, length int64) {
	rs, err := parseRegionTable(b[region1Offset:])
	if err != nil {
		panic(err)
	}
	for _, r := range rs {
		if r.GUID == id {
			return int64(r.Offset), int64(r.Length)
		}
	}
	panic("region not found")
}

// fixHeaders recomputes the CRC-32C of both headers.
func (b vhdxFile) fixHeaders() {
	for _, off := range []int{header1Offset, header2Offset} {
		le.PutUint32(b[off+4:], crc32c(b[off:off+headerSize], 4))
	}
}

// fixRegions recomputes the CRC-32C of both region tables.
func (b vhdxFile) fixRegions() {
	for _, off := range []int{region1Offset, region2Offset} {
		le.PutUint32(b[off+4:], crc32c(b[off:off+regionSize], 4))
	}
}

// batEntry returns a pointer-ish accessor to BAT entry i.
func (b vhdxFile) bat(i int64) uint64 {
	off, _ := b.region(regionBAT)
	return le.Uint64(b[off+8*i:])
}

func (b vhdxFile) setBAT(i int64, e uint64) {
	off, _ := b.region(regionBAT)
	le.PutUint64(b[off+8*i:], e)
}

// currentHeader returns the offset of the header with the larger sequence.
func (b vhdxFile) currentHeader() int {
	if le.Uint64(b[header2Offset+8:]) > le.Uint64(b[header1Offset+8:]) {
		return header2Offset
	}
	return header1Offset
}

// logEntrySpec describes one log entry to craft.
type logEntrySpec struct {
	seq     uint64
	tail    uint32
	guid    guid
	flushed uint64
	last    uint64
	writes  []logWrite
}

// build encodes the entry as MS-VHDX 2.3.1 describes.
func (s logEntrySpec) build() []byte {
	descSectors := (64 + 32*len(s.writes) + logSector - 1) / logSector
	nData := 0
	for _, w := range s.writes {
		if w.data != nil {
			nData++
		}
	}
	b := make([]byte, (descSectors+nData)*logSector)
	copy(b, "loge")
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint32(b[12:], s.tail)
	le.PutUint64(b[16:], s.seq)
	le.PutUint32(b[24:], uint32(len(s.writes)))
	copy(b[32:48], s.guid[:])
	le.PutUint64(b[48:], s.flushed)
	le.PutUint64(b[56:], s.last)
	next := descSectors * logSector
	for i, w := range s.writes {
		d := b[64+32*i:]
		le.PutUint64(d[16:], uint64(w.fileOff))
		le.PutUint64(d[24:], s.seq)
		if w.data == nil {
			copy(d, "zero")
			le.PutUint64(d[8:], uint64(w.zeroLen))
			continue
		}
		copy(d, "desc")
		copy(d[4:8], w.data[4092:])
		copy(d[8:16], w.data[:8])
		sec := b[next : next+logSector]
		copy(sec, "data")
		le.PutUint32(sec[4:], uint32(s.seq>>32))
		copy(sec[8:4092], w.data[8:4092])
		le.PutUint32(sec[4092:], uint32(s.seq))
		next += logSector
	}
	le.PutUint32(b[4:], crc32c(b, 4))
	return b
}
