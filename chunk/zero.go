package chunk

import "bytes"

// The canonical segmentation constants (see the package documentation).
const (
	// BlockSize is the granularity of zero detection.
	BlockSize = 4 << 10
	// MinZeroRun is the shortest run of zero blocks inside content that
	// becomes a hole.
	MinZeroRun = 64 << 10
)

// zeroBuf is a shared page of zeros: bytes.Equal against it runs at memory
// speed, and it feeds short zero stretches into splitters and hashes.
var zeroBuf [256 << 10]byte

// Zeros returns a read-only slice of n zero bytes (n up to 256 KiB); longer
// requests get the maximum length. Callers must not write to it.
func Zeros(n int) []byte {
	return zeroBuf[:min(n, len(zeroBuf))]
}

// IsZero reports whether every byte of b is zero.
func IsZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBuf))
		if !bytes.Equal(b[:n], zeroBuf[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// ZeroRuns returns the zero runs of b as [start, end) offsets: maximal runs
// of all-zero blocks of blockSize bytes (aligned to the start of b; the last
// block may be short) that are at least minRun bytes long or touch the start
// or the end of b. It is the segmentation rule of [Segmenter] for data held
// in memory.
func ZeroRuns(b []byte, blockSize, minRun int) [][2]int {
	var runs [][2]int
	start := -1
	for off := 0; off < len(b); off += blockSize {
		end := min(off+blockSize, len(b))
		if IsZero(b[off:end]) {
			if start < 0 {
				start = off
			}
			continue
		}
		if start >= 0 && (start == 0 || off-start >= minRun) {
			runs = append(runs, [2]int{start, off})
		}
		start = -1
	}
	if start >= 0 {
		runs = append(runs, [2]int{start, len(b)})
	}
	return runs
}

// Piece is one part of a segmented stream: a chunk of data, or a hole of
// Len zero bytes when Data is nil.
type Piece struct {
	Offset int64
	Len    int64
	Data   *Buffer // owned by the receiver, which must Release it
}

// A Segmenter applies the canonical segmentation (see the package
// documentation) to a stream: it finds zero runs, chunks each data run with
// its Splitter, and passes data chunks and holes in stream order to emit.
// Adjacent holes are merged. Bytes are fed with Write (read content, scanned
// for zero blocks) and WriteZeros (content known to be zero, never scanned),
// in any mix and any piece sizes: the result depends only on the bytes.
// Close ends the stream; the Segmenter can then be used for the next one.
type Segmenter struct {
	split *Splitter
	emit  func(Piece) error

	off         int64 // stream offset of the first byte not yet classified
	inData      bool  // a data run is open in the splitter
	chunkOff    int64 // stream offset of the splitter's pending chunk
	pendingZero int64 // zero bytes after the last non-zero block, not yet classified
	holeOff     int64 // a hole not yet emitted (merged with neighbours)
	holeLen     int64

	carry  [BlockSize]byte // a partial block
	carryN int

	emitChunk func(*Buffer) error // bound once, no per-call closure
}

// NewSegmenter returns a segmenter that chunks data runs with split and
// passes pieces to emit.
func NewSegmenter(split *Splitter, emit func(Piece) error) *Segmenter {
	s := &Segmenter{split: split, emit: emit}
	s.emitChunk = s.onChunk
	return s
}

// Offset returns the number of bytes written to the current stream.
func (s *Segmenter) Offset() int64 { return s.off + s.pendingZero + int64(s.carryN) }

// Write feeds bytes read from the stream.
func (s *Segmenter) Write(p []byte) error {
	if s.carryN > 0 {
		n := copy(s.carry[s.carryN:], p)
		s.carryN += n
		p = p[n:]
		if s.carryN < BlockSize {
			return nil
		}
		s.carryN = 0
		if err := s.blocks(s.carry[:]); err != nil {
			return err
		}
	}
	whole := len(p) / BlockSize * BlockSize
	if err := s.blocks(p[:whole]); err != nil {
		return err
	}
	s.carryN = copy(s.carry[:], p[whole:])
	return nil
}

// WriteZeros feeds n bytes known to be zero.
func (s *Segmenter) WriteZeros(n int64) error {
	if n <= 0 {
		return nil
	}
	if s.carryN > 0 {
		k := min(n, int64(BlockSize-s.carryN))
		clear(s.carry[s.carryN : s.carryN+int(k)])
		s.carryN += int(k)
		n -= k
		if s.carryN < BlockSize {
			return nil
		}
		s.carryN = 0
		if err := s.blocks(s.carry[:]); err != nil {
			return err
		}
	}
	whole := n / BlockSize * BlockSize
	s.pendingZero += whole
	rest := int(n - whole)
	clear(s.carry[:rest])
	s.carryN = rest
	return nil
}

// Close ends the stream: the last partial block is classified, the open
// data run is flushed and a trailing zero run becomes a hole.
func (s *Segmenter) Close() error {
	if s.carryN > 0 {
		n := s.carryN
		s.carryN = 0
		if err := s.blocks(s.carry[:n]); err != nil {
			return err
		}
	}
	if s.inData {
		if err := s.endRun(); err != nil {
			return err
		}
	}
	s.addHole(s.pendingZero)
	s.pendingZero = 0
	if err := s.flushHole(); err != nil {
		return err
	}
	s.off, s.chunkOff, s.holeOff = 0, 0, 0
	return nil
}

// Reset abandons the current stream (after an error) and releases pending
// buffers.
func (s *Segmenter) Reset() {
	s.split.Reset()
	s.off, s.chunkOff, s.holeOff, s.holeLen, s.pendingZero = 0, 0, 0, 0, 0
	s.inData = false
	s.carryN = 0
}

// blocks classifies whole blocks (the last one may be short at the end of
// the stream).
func (s *Segmenter) blocks(p []byte) error {
	start := -1 // start of a run of non-zero blocks
	for i := 0; i < len(p); i += BlockSize {
		b := p[i:min(i+BlockSize, len(p))]
		if IsZero(b) {
			if start >= 0 {
				if err := s.data(p[start:i]); err != nil {
					return err
				}
				start = -1
			}
			s.pendingZero += int64(len(b))
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		return s.data(p[start:])
	}
	return nil
}

// data feeds non-zero blocks, after deciding what the zeros before them are.
func (s *Segmenter) data(d []byte) error {
	if z := s.pendingZero; z > 0 {
		s.pendingZero = 0
		if !s.inData || z >= MinZeroRun {
			if s.inData {
				if err := s.endRun(); err != nil {
					return err
				}
			}
			s.addHole(z)
		} else {
			for z > 0 {
				zb := Zeros(int(min(z, int64(len(zeroBuf)))))
				s.off += int64(len(zb))
				if err := s.split.Write(zb, s.emitChunk); err != nil {
					return err
				}
				z -= int64(len(zb))
			}
		}
	}
	if !s.inData {
		s.inData = true
		s.chunkOff = s.off
	}
	s.off += int64(len(d))
	return s.split.Write(d, s.emitChunk)
}

func (s *Segmenter) endRun() error {
	s.inData = false
	return s.split.Flush(s.emitChunk)
}

func (s *Segmenter) addHole(n int64) {
	if n == 0 {
		return
	}
	if s.holeLen == 0 {
		s.holeOff = s.off
	}
	s.holeLen += n
	s.off += n
}

func (s *Segmenter) flushHole() error {
	if s.holeLen == 0 {
		return nil
	}
	p := Piece{Offset: s.holeOff, Len: s.holeLen}
	s.holeLen = 0
	return s.emit(p)
}

func (s *Segmenter) onChunk(b *Buffer) error {
	off := s.chunkOff
	n := int64(len(b.Data))
	s.chunkOff += n
	if IsZero(b.Data) {
		b.Release()
		if s.holeLen == 0 {
			s.holeOff = off
		}
		s.holeLen += n
		return nil
	}
	if err := s.flushHole(); err != nil {
		b.Release()
		return err
	}
	return s.emit(Piece{Offset: off, Len: n, Data: b})
}
