package vmdisk

import (
	"encoding/hex"
	"sync"

	"github.com/zeebo/blake3"
)

// DigestBlockSize is the block size of the whole-disk digest.
const DigestBlockSize = 1 << 20

// Digest computes the whole-disk digest recorded in disk snapshots and
// checked after a restore:
//
//	digest = BLAKE3-256( BLAKE3-256(block 0) || BLAKE3-256(block 1) || ... )
//
// where block i is bytes [i*DigestBlockSize, (i+1)*DigestBlockSize) of the
// guest-visible content (the last block may be shorter). It is a function of
// the content alone, like a plain hash, but an all-zero block costs a table
// look-up instead of hashing a mebibyte, so a 100 GiB disk that is mostly
// holes is digested in about the time of its data.
//
// Feed the content in order with Write (data) and WriteZeros (holes); both
// may split the content anywhere. A Digest is not safe for concurrent use.
type Digest struct {
	outer *blake3.Hasher
	block *blake3.Hasher
	n     int64 // bytes in the current block
}

var (
	zeroBlockOnce sync.Once
	zeroBlockSum  [32]byte
	zeroBuf       []byte
)

func zeroBlock() [32]byte {
	zeroBlockOnce.Do(func() {
		zeroBuf = make([]byte, DigestBlockSize)
		h := blake3.New()
		h.Write(zeroBuf)
		h.Sum(zeroBlockSum[:0])
	})
	return zeroBlockSum
}

// NewDigest returns an empty whole-disk digest.
func NewDigest() *Digest {
	zeroBlock()
	return &Digest{outer: blake3.New(), block: blake3.New()}
}

// Write adds data. It never fails.
func (d *Digest) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if d.n == 0 && len(p) >= DigestBlockSize && isZero(p[:DigestBlockSize]) {
			d.outer.Write(zeroBlockSum[:])
			p = p[DigestBlockSize:]
			continue
		}
		k := int(min(int64(len(p)), DigestBlockSize-d.n))
		d.block.Write(p[:k])
		d.n += int64(k)
		p = p[k:]
		if d.n == DigestBlockSize {
			d.endBlock()
		}
	}
	return total, nil
}

// WriteZeros adds n zero bytes.
func (d *Digest) WriteZeros(n int64) {
	if d.n > 0 {
		k := min(n, DigestBlockSize-d.n)
		d.block.Write(zeroBuf[:k])
		d.n += k
		n -= k
		if d.n == DigestBlockSize {
			d.endBlock()
		}
	}
	for ; n >= DigestBlockSize; n -= DigestBlockSize {
		d.outer.Write(zeroBlockSum[:])
	}
	if n > 0 {
		d.block.Write(zeroBuf[:n])
		d.n += n
	}
}

func (d *Digest) endBlock() {
	var s [32]byte
	d.block.Sum(s[:0])
	d.outer.Write(s[:])
	d.block.Reset()
	d.n = 0
}

// Sum finishes the digest and returns it as 64 hex digits. The Digest must
// not be used afterwards.
func (d *Digest) Sum() string {
	if d.n > 0 {
		d.endBlock()
	}
	return hex.EncodeToString(d.outer.Sum(nil))
}

func isZero(b []byte) bool {
	for len(b) >= 8 && (b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7]) == 0 {
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
