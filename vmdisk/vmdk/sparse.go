package vmdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/zlib"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/extents"
)

// Cache sizes: grain tables are 2 KiB each (256 cover 8 GiB of 64 KiB
// grains); decompressed grains are kept only for readers that read a
// grain in several pieces.
const (
	gtCacheSize    = 256
	grainCacheSize = 4
)

// sparseExtent reads a hosted sparse extent: the grain directory, grain
// tables and grains of one file.
type sparseExtent struct {
	f          *os.File
	path       string
	fileSize   int64
	h          header
	grainBytes int64
	gd         []uint32 // grain table sectors, 0 = none
	stream     bool     // compressed grains with markers

	mu      sync.Mutex
	gts     map[int][]uint32
	gtFIFO  []int
	grains  map[int64][]byte
	grFIFO  []int64
	zlibers sync.Pool
}

func (s *sparseExtent) formatErr(structure string, off int64, msg string, err error) error {
	return &vmdisk.FormatError{Format: "vmdk", Path: s.path, Struct: structure, Offset: off, Msg: msg, Err: err}
}

// newSparseExtent validates a parsed header against the file and loads
// the grain directory (from the footer for VMware streams).
func newSparseExtent(f *os.File, path string, fileSize int64, h header) (*sparseExtent, error) {
	s := &sparseExtent{f: f, path: path, fileSize: fileSize, h: h, grainBytes: int64(h.GrainSize) * sector,
		stream: h.compressed(), gts: map[int][]uint32{}, grains: map[int64][]byte{}}
	if h.DescriptorOffset > 0 && int64(h.DescriptorOffset+h.DescriptorSize)*sector > fileSize {
		return nil, s.formatErr("sparse header", 0, fmt.Sprintf("descriptor at sector %d+%d beyond end of file (%d bytes)", h.DescriptorOffset, h.DescriptorSize, fileSize), nil)
	}
	if h.GDOffset == gdAtEnd {
		if !s.stream {
			return nil, s.formatErr("sparse header", 0, "grain directory at end of stream in an extent without compressed grains", nil)
		}
		footerOff := fileSize - 2*sector
		if footerOff < headerSize {
			return nil, s.formatErr("footer", footerOff, "file too short for a stream footer", nil)
		}
		b := make([]byte, headerSize)
		if _, err := f.ReadAt(b, footerOff); err != nil {
			return nil, s.formatErr("footer", footerOff, "cannot read", err)
		}
		fh, msg := parseHeader(b)
		if msg != "" {
			return nil, s.formatErr("footer", footerOff, msg, nil)
		}
		if fh.GDOffset == gdAtEnd {
			return nil, s.formatErr("footer", footerOff, "footer has no grain directory offset", nil)
		}
		if fh.Capacity != h.Capacity || fh.GrainSize != h.GrainSize || fh.NumGTEsPerGT != h.NumGTEsPerGT {
			return nil, s.formatErr("footer", footerOff, "footer disagrees with the header on capacity or grain layout", nil)
		}
		s.h.GDOffset = fh.GDOffset
	}
	n := s.h.gdEntries()
	gdOff := int64(s.h.GDOffset) * sector
	if gdOff < headerSize || uint64(gdOff)+n*4 > uint64(fileSize) {
		return nil, s.formatErr("grain directory", gdOff, fmt.Sprintf("%d entries beyond end of file (%d bytes)", n, fileSize), nil)
	}
	raw := make([]byte, n*4)
	if _, err := f.ReadAt(raw, gdOff); err != nil {
		return nil, s.formatErr("grain directory", gdOff, "cannot read", err)
	}
	s.gd = make([]uint32, n)
	gtBytes := int64(h.NumGTEsPerGT) * 4
	for i := range s.gd {
		v := binary.LittleEndian.Uint32(raw[i*4:])
		if v != 0 && int64(v)*sector+gtBytes > fileSize {
			return nil, s.formatErr("grain directory", gdOff+int64(i)*4,
				fmt.Sprintf("entry %d: grain table at sector %d beyond end of file (%d bytes)", i, v, fileSize), nil)
		}
		s.gd[i] = v
	}
	return s, nil
}

// size is the extent's capacity in bytes.
func (s *sparseExtent) size() int64 { return int64(s.h.Capacity) * sector }

// table returns grain table i (which must have a non-zero GD entry),
// through the cache.
func (s *sparseExtent) table(i int) ([]uint32, error) {
	s.mu.Lock()
	gt, ok := s.gts[i]
	s.mu.Unlock()
	if ok {
		return gt, nil
	}
	gt, err := s.readTable(i, nil)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if _, ok := s.gts[i]; !ok {
		if len(s.gtFIFO) >= gtCacheSize {
			delete(s.gts, s.gtFIFO[0])
			s.gtFIFO = s.gtFIFO[1:]
		}
		s.gts[i] = gt
		s.gtFIFO = append(s.gtFIFO, i)
	}
	s.mu.Unlock()
	return gt, nil
}

// readTable reads grain table i from the file, reusing buf when it is
// large enough.
func (s *sparseExtent) readTable(i int, buf []uint32) ([]uint32, error) {
	n := int(s.h.NumGTEsPerGT)
	off := int64(s.gd[i]) * sector
	raw := make([]byte, n*4)
	if _, err := s.f.ReadAt(raw, off); err != nil {
		return nil, s.formatErr(fmt.Sprintf("grain table %d", i), off, "cannot read", err)
	}
	gt := buf
	if cap(gt) < n {
		gt = make([]uint32, n)
	}
	gt = gt[:n]
	for j := range gt {
		gt[j] = binary.LittleEndian.Uint32(raw[j*4:])
	}
	return gt, nil
}

// Grain states.
const (
	grainUnallocated = iota // read the parent, or zeros
	grainZero               // zeroed-grain entry: zeros, hides the parent
	grainData
)

// lookup returns grain g's state and its sector in the file.
func (s *sparseExtent) lookup(g int64) (int, uint32, error) {
	per := int64(s.h.NumGTEsPerGT)
	i := int(g / per)
	if i >= len(s.gd) || s.gd[i] == 0 {
		return grainUnallocated, 0, nil
	}
	gt, err := s.table(i)
	if err != nil {
		return 0, 0, err
	}
	return s.classify(g, gt[g%per])
}

// classify interprets grain g's table entry v.
func (s *sparseExtent) classify(g int64, v uint32) (int, uint32, error) {
	switch {
	case v == 0:
		return grainUnallocated, 0, nil
	case v == 1 && s.h.zeroedGTE():
		return grainZero, 0, nil
	}
	off := int64(v) * sector
	if uint64(v) < s.h.OverHead || off < headerSize || off >= s.fileSize ||
		(!s.stream && off+min(s.grainBytes, s.size()-g*s.grainBytes) > s.fileSize) {
		per := int64(s.h.NumGTEsPerGT)
		i := g / per
		return 0, 0, s.formatErr(fmt.Sprintf("grain table %d", i), int64(s.gd[i])*sector+(g%per)*4,
			fmt.Sprintf("grain %d at sector %d outside the data area of the file (%d bytes)", g, v, s.fileSize), nil)
	}
	return grainData, v, nil
}

// readAt fills p with the extent's bytes at off (inside the extent),
// calling parent for unallocated grains.
func (s *sparseExtent) readAt(p []byte, off int64, parent func(p []byte, off int64) error) error {
	gb := s.grainBytes
	for len(p) > 0 {
		g := off / gb
		in := off % gb
		n := min(int64(len(p)), gb-in)
		state, sec, err := s.lookup(g)
		if err != nil {
			return err
		}
		switch {
		case state == grainUnallocated:
			if err := parent(p[:n], off); err != nil {
				return err
			}
		case state == grainZero:
			clear(p[:n])
		case s.stream:
			data, err := s.grain(g, sec)
			if err != nil {
				return err
			}
			copy(p[:n], data[in:in+n])
		default:
			// Extend over following grains stored contiguously in the
			// file, so a large read is one ReadAt.
			next := sec + uint32(s.h.GrainSize)
			for k := g + 1; n < int64(len(p)); k++ {
				st2, sec2, err := s.lookup(k)
				if err != nil || st2 != grainData || sec2 != next {
					break
				}
				n = min(int64(len(p)), n+gb)
				next += uint32(s.h.GrainSize)
			}
			fileOff := int64(sec)*sector + in
			if k, err := s.f.ReadAt(p[:n], fileOff); err != nil {
				if err == io.EOF {
					return s.formatErr("grain", fileOff+int64(k), fmt.Sprintf("grain %d beyond end of file", g), io.ErrUnexpectedEOF)
				}
				return fmt.Errorf("read %s: %w", s.path, err)
			}
		}
		p = p[n:]
		off += n
	}
	return nil
}

// grain returns the decompressed grain g stored at sector sec.
func (s *sparseExtent) grain(g int64, sec uint32) ([]byte, error) {
	s.mu.Lock()
	data, ok := s.grains[g]
	s.mu.Unlock()
	if ok {
		return data, nil
	}
	off := int64(sec) * sector
	buf := make([]byte, min(s.grainBytes+2*sector, s.fileSize-off))
	if _, err := s.f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	if len(buf) < 12 {
		return nil, s.formatErr("grain marker", off, "truncated", nil)
	}
	lba := binary.LittleEndian.Uint64(buf)
	size := int64(binary.LittleEndian.Uint32(buf[8:]))
	if lba != uint64(g)*s.h.GrainSize {
		return nil, s.formatErr("grain marker", off, fmt.Sprintf("marker for sector %d where grain %d (sector %d) belongs", lba, g, uint64(g)*s.h.GrainSize), nil)
	}
	if size == 0 || off+12+size > s.fileSize || size > 2*s.grainBytes+4096 {
		return nil, s.formatErr("grain marker", off, fmt.Sprintf("compressed size %d out of range", size), nil)
	}
	if int64(len(buf)) < 12+size {
		buf = make([]byte, 12+size)
		if _, err := s.f.ReadAt(buf, off); err != nil {
			return nil, s.formatErr("grain", off, "cannot read", err)
		}
	}
	data = make([]byte, s.grainBytes)
	if err := s.inflate(data, buf[12:12+size]); err != nil {
		return nil, s.formatErr("grain", off, fmt.Sprintf("grain %d does not decompress", g), err)
	}
	s.mu.Lock()
	if _, ok := s.grains[g]; !ok {
		if len(s.grFIFO) >= grainCacheSize {
			delete(s.grains, s.grFIFO[0])
			s.grFIFO = s.grFIFO[1:]
		}
		s.grains[g] = data
		s.grFIFO = append(s.grFIFO, g)
	}
	s.mu.Unlock()
	return data, nil
}

var errGrainTooLong = errors.New("data longer than a grain")

// inflate decompresses a zlib stream into dst; a shorter result is padded
// with zeros (the last grain of a disk may be partial).
func (s *sparseExtent) inflate(dst, src []byte) error {
	var zr io.ReadCloser
	if v := s.zlibers.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(bytes.NewReader(src), nil); err != nil {
			return err
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(bytes.NewReader(src)); err != nil {
			return err
		}
	}
	n, err := io.ReadFull(zr, dst)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		clear(dst[n:])
		err = nil
	} else if err == nil {
		var one [1]byte
		if k, _ := zr.Read(one[:]); k > 0 {
			err = errGrainTooLong
		}
	}
	if err == nil {
		s.zlibers.Put(zr)
	}
	return err
}

// allocation appends the extent's grains to own (allocated: data) and
// fall (unallocated: the parent shows through), in virtual coordinates
// starting at base, for the first size bytes of the extent.
func (s *sparseExtent) allocation(base, size int64, own, fall []vmdisk.Extent) ([]vmdisk.Extent, []vmdisk.Extent, error) {
	size = min(size, s.size())
	per := int64(s.h.NumGTEsPerGT)
	span := per * s.grainBytes
	var gt []uint32
	for i := range s.gd {
		start := int64(i) * span
		if start >= size {
			break
		}
		if s.gd[i] == 0 {
			fall = extents.Append(fall, base+start, min(span, size-start))
			continue
		}
		// Read tables directly: a full walk must not flush the cache that
		// serves ReadAt.
		var err error
		if gt, err = s.readTable(i, gt); err != nil {
			return nil, nil, err
		}
		for j := int64(0); j < per; j++ {
			g := int64(i)*per + j
			off := g * s.grainBytes
			if off >= size {
				break
			}
			n := min(s.grainBytes, size-off)
			state, _, err := s.classify(g, gt[j])
			if err != nil {
				return nil, nil, err
			}
			switch state {
			case grainData:
				own = extents.Append(own, base+off, n)
			case grainUnallocated:
				fall = extents.Append(fall, base+off, n)
			}
		}
	}
	return own, fall, nil
}
