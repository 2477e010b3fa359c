package chunk

import (
	"bytes"
	"testing"
)

// TestPoolDropsGrownBuffers checks that a buffer grown far past the
// initial capacity is not kept, while a normal one is reused.
func TestPoolDropsGrownBuffers(t *testing.T) {
	p := NewPool(2, 1024)
	b := p.Get(0)
	b.Data = append(b.Data, make([]byte, 100)...)
	b.Release()
	if b2 := p.Get(0); b2 != b || len(b2.Data) != 0 || cap(b2.Data) != 1024 {
		t.Fatalf("normal buffer not reused empty: same %v, len %d, cap %d", b2 == b, len(b2.Data), cap(b2.Data))
	}
	b.Data = append(b.Data, make([]byte, 4096)...)
	b.Release()
	if b3 := p.Get(0); b3 == b || cap(b3.Data) != 1024 {
		t.Fatalf("grown buffer kept: same %v, cap %d", b3 == b, cap(b3.Data))
	}
}

// TestSplitterGrow checks that chunk buffers double up to the largest
// chunk and that the chunks are unchanged by it.
func TestSplitterGrow(t *testing.T) {
	s := &Splitter{max: 10000}
	var b []byte
	var want []byte
	for i := range 40 {
		piece := bytes.Repeat([]byte{byte(i)}, 250)
		b = s.grow(b, len(piece))
		if len(b)+len(piece) > cap(b) {
			t.Fatalf("grow left no room: len %d cap %d need %d", len(b), cap(b), len(piece))
		}
		b = append(b, piece...)
		want = append(want, piece...)
		if cap(b) > s.max {
			t.Fatalf("capacity %d beyond the maximum chunk %d", cap(b), s.max)
		}
	}
	if !bytes.Equal(b, want) {
		t.Fatal("content changed by growing")
	}
	if got := s.grow(make([]byte, 0, 16), 20000); cap(got) < 20000 {
		t.Fatalf("grow beyond the maximum: cap %d", cap(got))
	}
}
