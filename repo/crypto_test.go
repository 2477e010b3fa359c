package repo

import (
	"bytes"
	"testing"

	"github.com/zeebo/blake3"
)

func TestSealOpen(t *testing.T) {
	k1, _ := newMasterKey()
	k2, _ := newMasterKey()
	c1, err := newCrypter(k1)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := newCrypter(k2)
	for _, n := range []int{0, 1, 63, 64, 1 << 16} {
		plain := bytes.Repeat([]byte{0xA5}, n)
		s1 := c1.seal(nil, plain)
		s2 := c1.seal(nil, plain)
		if len(s1) != n+sealExtra {
			t.Fatalf("sealed length %d, want %d", len(s1), n+sealExtra)
		}
		if bytes.Equal(s1, s2) {
			t.Fatal("two seals of the same plaintext are equal: nonce reuse")
		}
		got, err := c1.open(nil, s1)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open: %v", err)
		}
		if _, err := c2.open(nil, s1); err == nil {
			t.Fatal("opened with the wrong key")
		}
		for _, i := range []int{0, nonceSize, len(s1) - 1} {
			bad := bytes.Clone(s1)
			bad[i] ^= 1
			if _, err := c1.open(nil, bad); err == nil {
				t.Fatalf("flipped bit at %d not detected", i)
			}
		}
		if _, err := c1.open(nil, s1[:len(s1)-1]); err == nil {
			t.Fatal("truncated seal opened")
		}
	}
}

func TestBlobIDKeyed(t *testing.T) {
	k1, _ := newMasterKey()
	k2, _ := newMasterKey()
	c1, _ := newCrypter(k1)
	c2, _ := newCrypter(k2)
	d := []byte("some content")
	if c1.blobID(d) != c1.blobID(d) {
		t.Fatal("blob id not deterministic")
	}
	if c1.blobID(d) == c2.blobID(d) {
		t.Fatal("blob ids of different keys are equal")
	}
	if c1.blobID(d) == FileID(d) {
		t.Fatal("blob id equals the unkeyed hash")
	}
	h, _ := blake3.NewKeyed(k1.ID)
	_, _ = h.Write(d)
	id := c1.blobID(d)
	if !bytes.Equal(h.Sum(nil), id[:]) {
		t.Fatal("blob id is not BLAKE3 keyed with the id key")
	}
	want := blake3.Sum256(d)
	if FileID(d) != ID(want) {
		t.Fatal("file id is not unkeyed BLAKE3-256")
	}
}

func TestCompressRoundTrip(t *testing.T) {
	src := bytes.Repeat([]byte("bunker "), 10000)
	c := compress(nil, src, false)
	if !pays(len(c), len(src)) {
		t.Fatalf("repetitive data compressed to %d of %d bytes", len(c), len(src))
	}
	got, err := decompress(nil, c, len(src))
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("decompress: %v", err)
	}
	if _, err := decompress(nil, c, len(src)-1); err == nil {
		t.Fatal("longer output than announced accepted")
	}
	if _, err := decompress(nil, c, len(src)+1); err == nil {
		t.Fatal("shorter output than announced accepted")
	}
	if !pays(1599, 1600) || pays(1600, 1600) {
		t.Fatal("compression must be kept exactly when it is smaller")
	}
}
