package vmdisk

import (
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
)

// reference computes the digest the slow way, from its definition.
func reference(content []byte) string {
	outer := blake3.New()
	for off := 0; off < len(content); off += DigestBlockSize {
		s := blake3.Sum256(content[off:min(off+DigestBlockSize, len(content))])
		outer.Write(s[:])
	}
	return hex.EncodeToString(outer.Sum(nil))
}

func TestDigestMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	content := make([]byte, 5*DigestBlockSize+12345)
	// data, a hole, data, a zero block written as data, data.
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	clear(content[700000 : 700000+2*DigestBlockSize+999])
	clear(content[4*DigestBlockSize : 5*DigestBlockSize])
	want := reference(content)

	// Split the content at random places, feeding zero runs as holes
	// sometimes and as data other times.
	for trial := range 50 {
		d := NewDigest()
		for off := 0; off < len(content); {
			n := 1 + rng.IntN(3*DigestBlockSize)
			n = min(n, len(content)-off)
			p := content[off : off+n]
			if isZero(p) && trial%2 == 0 {
				d.WriteZeros(int64(n))
			} else {
				d.Write(p)
			}
			off += n
		}
		if got := d.Sum(); got != want {
			t.Fatalf("trial %d: digest %s, want %s", trial, got, want)
		}
	}
}

func TestDigestEmptyAndHoles(t *testing.T) {
	if got, want := NewDigest().Sum(), reference(nil); got != want {
		t.Errorf("empty: %s, want %s", got, want)
	}
	d := NewDigest()
	d.WriteZeros(3*DigestBlockSize + 7)
	if got, want := d.Sum(), reference(make([]byte, 3*DigestBlockSize+7)); got != want {
		t.Errorf("holes: %s, want %s", got, want)
	}
}

func BenchmarkDigestHoles100GiB(b *testing.B) {
	for range b.N {
		d := NewDigest()
		d.WriteZeros(100 << 30)
		d.Sum()
	}
}

func BenchmarkDigestData(b *testing.B) {
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(buf)))
	d := NewDigest()
	for range b.N {
		d.Write(buf)
	}
}
