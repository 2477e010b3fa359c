package vhdx

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

const logSector = 4 * kiB

// span is a byte range of the file.
type span struct{ off, end int64 }

// overlay holds the effect of a replayed log: 4 KiB sectors written and
// ranges zeroed, to be laid over the file.
type overlay struct {
	data  map[int64][]byte // sector file offset -> 4 KiB
	zeros []span
	// minSize is the file size the log requires (LastFileOffset).
	minSize int64
	// entries is the number of log entries replayed.
	entries int
}

// fileView reads the VHDX file as it is after log replay, without having
// written anything: the overlay's sectors and zero ranges replace the
// file's bytes, and the file reads as zeros beyond its end up to size.
type fileView struct {
	r    io.ReaderAt
	phys int64
	size int64
	ov   *overlay
}

func (v *fileView) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= v.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > v.size-off {
		n = int(v.size - off)
	}
	q := p[:n]
	if off < v.phys {
		m := int(min(int64(n), v.phys-off))
		k, err := v.r.ReadAt(q[:m], off)
		if k < m {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return k, err
		}
		clear(q[m:])
	} else {
		clear(q)
	}
	if v.ov != nil {
		end := off + int64(n)
		for _, z := range v.ov.zeros {
			if lo, hi := max(z.off, off), min(z.end, end); lo < hi {
				clear(q[lo-off : hi-off])
			}
		}
		if len(v.ov.data) > 0 {
			for s := off &^ (logSector - 1); s < end; s += logSector {
				d, ok := v.ov.data[s]
				if !ok {
					continue
				}
				lo, hi := max(s, off), min(s+logSector, end)
				copy(q[lo-off:hi-off], d[lo-s:hi-s])
			}
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// logEntry is a validated log entry.
type logEntry struct {
	off       int64 // offset in the log
	length    int64
	tail      int64
	seq       uint64
	flushed   uint64
	last      uint64
	writes    []logWrite
	dataCount int
}

// logWrite is one descriptor: a 4 KiB sector write or a zeroed range.
type logWrite struct {
	fileOff int64
	zeroLen int64  // for zero descriptors
	data    []byte // 4 KiB for data descriptors
}

// maxReplayOffset bounds file offsets named by the log (the format allows
// 64 TiB of payload plus metadata).
const maxReplayOffset = 1 << 47

// logReader reads the circular log.
type logReader []byte

// at returns n bytes at off, wrapping at the end of the log.
func (l logReader) at(off, n int64) ([]byte, bool) {
	L := int64(len(l))
	if n > L || off < 0 || off >= L {
		return nil, false
	}
	if off+n <= L {
		return l[off : off+n], true
	}
	b := make([]byte, 0, n)
	b = append(b, l[off:]...)
	return append(b, l[:n-(L-off)]...), true
}

// parseEntry validates the log entry at off: header, CRC-32C over the
// whole entry, descriptors and data sectors.
func (l logReader) parseEntry(off int64, logGUID guid) (*logEntry, error) {
	h, ok := l.at(off, logSector)
	if !ok {
		return nil, errors.New("beyond the log")
	}
	if string(h[:4]) != "loge" {
		return nil, errors.New("no entry signature")
	}
	e := &logEntry{
		off:     off,
		length:  int64(le.Uint32(h[8:])),
		tail:    int64(le.Uint32(h[12:])),
		seq:     le.Uint64(h[16:]),
		flushed: le.Uint64(h[48:]),
		last:    le.Uint64(h[56:]),
	}
	count := int64(le.Uint32(h[24:]))
	var g guid
	copy(g[:], h[32:48])
	switch {
	case e.length < logSector || e.length%logSector != 0 || e.length > int64(len(l)):
		return nil, fmt.Errorf("entry length %d", e.length)
	case e.tail%logSector != 0 || e.tail >= int64(len(l)):
		return nil, fmt.Errorf("tail %d", e.tail)
	case e.seq == 0:
		return nil, errors.New("sequence number 0")
	case g != logGUID:
		return nil, fmt.Errorf("log GUID %s is not the header's %s", g, logGUID)
	}
	descSectors := (64 + 32*count + logSector - 1) / logSector
	if descSectors*logSector > e.length {
		return nil, fmt.Errorf("%d descriptors do not fit in %d bytes", count, e.length)
	}
	b, _ := l.at(off, e.length)
	if sum, want := crc32c(b, 4), le.Uint32(b[4:]); sum != want {
		return nil, fmt.Errorf("CRC-32C %#08x, computed %#08x", want, sum)
	}
	next := descSectors * logSector // next data sector
	for i := range count {
		d := b[64+32*i:]
		seq := le.Uint64(d[24:])
		fileOff := le.Uint64(d[16:])
		if seq != e.seq {
			return nil, fmt.Errorf("descriptor %d has sequence number %d, entry %d", i, seq, e.seq)
		}
		if fileOff%logSector != 0 || fileOff > maxReplayOffset {
			return nil, fmt.Errorf("descriptor %d: file offset %d", i, fileOff)
		}
		switch string(d[:4]) {
		case "zero":
			n := le.Uint64(d[8:])
			if n%logSector != 0 || n > maxReplayOffset {
				return nil, fmt.Errorf("descriptor %d: zero length %d", i, n)
			}
			e.writes = append(e.writes, logWrite{fileOff: int64(fileOff), zeroLen: int64(n)})
		case "desc":
			if next+logSector > e.length {
				return nil, fmt.Errorf("descriptor %d: data sector beyond the entry", i)
			}
			s := b[next : next+logSector]
			next += logSector
			if string(s[:4]) != "data" || le.Uint32(s[4:]) != uint32(e.seq>>32) || le.Uint32(s[4092:]) != uint32(e.seq) {
				return nil, fmt.Errorf("data sector of descriptor %d is torn", i)
			}
			sec := make([]byte, logSector)
			copy(sec[:8], d[8:16]) // LeadingBytes
			copy(sec[8:4092], s[8:4092])
			copy(sec[4092:], d[4:8]) // TrailingBytes
			e.writes = append(e.writes, logWrite{fileOff: int64(fileOff), data: sec})
			e.dataCount++
		default:
			return nil, fmt.Errorf("descriptor %d has signature %q", i, d[:4])
		}
	}
	return e, nil
}

// replayLog finds the active sequence of the log (MS-VHDX 2.3.3) and
// replays it into an overlay. fileSize is the size of the file on disk.
func replayLog(log []byte, logGUID guid, fileSize int64) (*overlay, error) {
	l := logReader(log)
	L := int64(len(l))
	if L == 0 || L%logSector != 0 {
		return nil, fmt.Errorf("log length %d is not a multiple of 4 KiB", L)
	}
	memo := make(map[int64]*logEntry)
	entry := func(off int64) *logEntry {
		if e, ok := memo[off]; ok {
			return e
		}
		e, err := l.parseEntry(off, logGUID)
		if err != nil {
			e = nil
		}
		memo[off] = e
		return e
	}
	var best []*logEntry
	var curTail, oldTail int64
	for {
		var seq []*logEntry
		head := curTail
		for len(seq) <= int(L/logSector) {
			e := entry(head)
			if e == nil || (len(seq) > 0 && e.seq != seq[len(seq)-1].seq+1) {
				break
			}
			seq = append(seq, e)
			head = (head + e.length) % L
		}
		valid := false
		if len(seq) > 0 {
			last := seq[len(seq)-1]
			for i, e := range seq {
				if e.off == last.tail {
					valid = true
					if len(best) == 0 || last.seq > best[len(best)-1].seq {
						best = seq[i:]
					}
					break
				}
			}
		}
		if valid {
			curTail = head
		} else {
			curTail = (curTail + logSector) % L
		}
		if curTail <= oldTail {
			break
		}
		oldTail = curTail
	}
	if len(best) == 0 {
		return nil, errors.New("the log holds no valid, complete sequence of entries")
	}
	head := best[len(best)-1]
	if uint64(fileSize) < head.flushed {
		return nil, fmt.Errorf("file is %d bytes but the log says it was %d (truncated)", fileSize, head.flushed)
	}
	ov := &overlay{data: make(map[int64][]byte), minSize: int64(min(head.last, maxReplayOffset)), entries: len(best)}
	for _, e := range best {
		for _, w := range e.writes {
			if w.data != nil {
				ov.data[w.fileOff] = w.data
				continue
			}
			z := span{w.fileOff, w.fileOff + w.zeroLen}
			for off := range ov.data {
				if off >= z.off && off < z.end {
					delete(ov.data, off)
				}
			}
			ov.zeros = append(ov.zeros, z)
		}
	}
	sort.Slice(ov.zeros, func(i, j int) bool { return ov.zeros[i].off < ov.zeros[j].off })
	return ov, nil
}
