package chunk

import (
	"errors"
	"fmt"

	"github.com/restic/chunker"
)

// Params are the chunking parameters of one kind of content.
type Params struct {
	// Min is the smallest chunk, except for the last chunk of a run.
	Min int `json:"min"`
	// Max is the largest chunk.
	Max int `json:"max"`
	// AvgBits is the number of fingerprint bits that must be zero for a
	// cut; past Min a cut comes on average every 2^AvgBits bytes.
	AvgBits int `json:"avg_bits"`
}

const windowSize = 64 // the Rabin window of restic/chunker

// Validate reports whether p can be used for chunking.
func (p Params) Validate() error {
	switch {
	case p.Min < windowSize:
		return fmt.Errorf("invalid chunker parameters: min %d is smaller than %d", p.Min, windowSize)
	case p.Max < p.Min:
		return fmt.Errorf("invalid chunker parameters: max %d is smaller than min %d", p.Max, p.Min)
	case p.Max > 1<<30:
		return fmt.Errorf("invalid chunker parameters: max %d is larger than 1 GiB", p.Max)
	case p.AvgBits < 1 || p.AvgBits > 30:
		return fmt.Errorf("invalid chunker parameters: avg_bits %d is outside 1..30", p.AvgBits)
	}
	return nil
}

// ErrPolynomial is returned for a polynomial that is not irreducible of
// degree 53.
var ErrPolynomial = errors.New("chunker polynomial is not irreducible of degree 53")

// CheckPolynomial reports whether pol is usable: irreducible, of degree 53.
func CheckPolynomial(pol uint64) error {
	p := chunker.Pol(pol)
	if p.Deg() != 53 || !p.Irreducible() {
		return fmt.Errorf("%w: %#x", ErrPolynomial, pol)
	}
	return nil
}

// RandomPolynomial returns a new random irreducible polynomial of degree
// 53 for a new repository.
func RandomPolynomial() (uint64, error) {
	p, err := chunker.RandomPolynomial()
	return uint64(p), err
}

// A Splitter cuts a stream of bytes into content-defined chunks. Write
// feeds bytes; every finished chunk is passed to the emit function in a
// Buffer from the splitter's pool, which the receiver owns and must Release.
// Flush ends the stream (or one independent run of it). A Splitter is not
// safe for concurrent use; use one per goroutine.
type Splitter struct {
	rabin    *rabin
	mask     uint64
	min, max int
	pool     *Pool
	cur      *Buffer
}

// NewSplitter returns a splitter for polynomial pol and parameters p that
// takes its buffers from pool (nil: a private pool).
func NewSplitter(pol uint64, p Params, pool *Pool) (*Splitter, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := CheckPolynomial(pol); err != nil {
		return nil, err
	}
	if pool == nil {
		pool = NewPool(4, p.Min)
	}
	return &Splitter{rabin: newRabin(pol), mask: 1<<p.AvgBits - 1, min: p.Min, max: p.Max, pool: pool}, nil
}

// Pool returns the pool the splitter takes its buffers from.
func (s *Splitter) Pool() *Pool { return s.pool }

// Write feeds p to the splitter. It calls emit for every chunk that ends in
// p, in order; an error from emit stops Write and is returned. p is not
// retained.
func (s *Splitter) Write(p []byte, emit func(*Buffer) error) error {
	for len(p) > 0 {
		if s.cur == nil {
			s.cur = s.pool.Get(s.max)
		}
		n := s.next(p)
		if n < 0 {
			s.cur.Data = s.grow(s.cur.Data, len(p))
			s.cur.Data = append(s.cur.Data, p...)
			return nil
		}
		s.cur.Data = s.grow(s.cur.Data, n)
		s.cur.Data = append(s.cur.Data, p[:n]...)
		p = p[n:]
		b := s.cur
		s.cur = nil
		if err := emit(b); err != nil {
			return err
		}
	}
	return nil
}

// next returns the number of bytes of p that end the current chunk, or -1
// when the chunk goes on past p. The chunk ends after its L-th byte for the
// smallest L in [min, max] at which the fingerprint of the 64 bytes ending
// there matches the mask, or at max.
func (s *Splitter) next(p []byte) int {
	have := len(s.cur.Data)
	// Byte i of p is byte have+i of the chunk; a chunk may end after it
	// when have+i+1 is in [min, max].
	first, last := max(0, s.min-1-have), min(len(p)-1, s.max-1-have)
	if first > last {
		return -1
	}
	j := -1
	if first < windowSize-1 {
		// The windows of the first bytes of p begin in the chunk's bytes
		// before p: scan a copy of both. The window of chunk byte
		// min-1 >= 63 lies inside the chunk, so k+first >= 63.
		var tmp [2*windowSize - 2]byte
		k := copy(tmp[:], s.cur.Data[max(0, have-(windowSize-1)):])
		m := copy(tmp[k:], p[:min(len(p), windowSize-1)])
		end := min(last+1, windowSize-1)
		if r := s.rabin.scan1(tmp[:k+m], k+first, k+end, s.mask); r >= 0 {
			j = r - k
		}
		first = windowSize - 1
	}
	if j < 0 && first <= last {
		j = s.rabin.scan(p, first, last+1, s.mask)
	}
	if j < 0 && have+last+1 == s.max {
		j = last
	}
	if j < 0 {
		return -1
	}
	return j + 1
}

// grow returns b with room for n more bytes. It doubles the capacity, up
// to the largest chunk, rather than leaving it to append, which grows large
// slices by a quarter at a time: a chunk near the maximum would otherwise
// leave several times its size in garbage behind.
func (s *Splitter) grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b
	}
	c := max(min(2*cap(b), s.max), len(b)+n)
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

// Pending returns the number of bytes written since the last chunk was
// emitted.
func (s *Splitter) Pending() int {
	if s.cur == nil {
		return 0
	}
	return len(s.cur.Data)
}

// Flush emits the bytes written since the last chunk as a final, possibly
// short chunk (nothing when there are none) and resets the splitter, so the
// next Write starts a new, independent run.
func (s *Splitter) Flush(emit func(*Buffer) error) error {
	b := s.cur
	s.cur = nil
	if b == nil {
		return nil
	}
	if len(b.Data) == 0 {
		b.Release()
		return nil
	}
	return emit(b)
}

// Reset discards pending bytes and resets the splitter.
func (s *Splitter) Reset() {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
}

// A Buffer holds one chunk. Its owner calls Release when done with it;
// Data must not be used afterwards.
type Buffer struct {
	Data []byte
	pool *Pool
}

// Release returns the buffer to its pool.
func (b *Buffer) Release() {
	if b.pool != nil {
		b.pool.put(b)
	}
}

// Pool recycles chunk buffers. It never blocks: Get allocates when the pool
// is empty and Release drops buffers beyond the pool's capacity. Memory is
// bounded by the consumers (bounded queues), the pool only avoids garbage.
// A buffer that grew past twice the initial capacity (for one of the rare
// chunks near the maximum) is dropped rather than kept: otherwise, over a
// long backup, every pooled buffer ends up the size of the largest chunk.
// A Pool is safe for concurrent use.
type Pool struct {
	free    chan *Buffer
	initCap int
}

// NewPool returns a pool that keeps up to n idle buffers. New buffers start
// with capacity initCap and grow as needed.
func NewPool(n, initCap int) *Pool {
	return &Pool{free: make(chan *Buffer, n), initCap: initCap}
}

// Get returns an empty buffer. hint is the largest size the buffer may
// need to hold; it is allocated lazily.
func (p *Pool) Get(hint int) *Buffer {
	select {
	case b := <-p.free:
		b.Data = b.Data[:0]
		return b
	default:
	}
	c := p.initCap
	if hint > 0 && hint < c {
		c = hint
	}
	return &Buffer{Data: make([]byte, 0, c), pool: p}
}

func (p *Pool) put(b *Buffer) {
	if cap(b.Data) > 2*p.initCap {
		b.Data = nil
		return
	}
	b.Data = b.Data[:0]
	select {
	case p.free <- b:
	default:
	}
}
