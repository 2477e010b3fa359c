package fsread

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

type countingReader struct {
	r     io.ReaderAt
	reads int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(p, off)
}

func TestPageCache(t *testing.T) {
	data := make([]byte, 3*cachePage+1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	cr := &countingReader{r: bytes.NewReader(data)}
	c := newPageCache(cr, int64(len(data)))
	for _, tc := range []struct {
		off int64
		n   int
	}{{0, 100}, {cachePage - 10, 20}, {3*cachePage + 990, 10}, {5, 1}, {2*cachePage - 1, 2}} {
		buf := make([]byte, tc.n)
		if k, err := c.ReadAt(buf, tc.off); k != tc.n || err != nil || !bytes.Equal(buf, data[tc.off:tc.off+int64(tc.n)]) {
			t.Errorf("ReadAt(%d, %d) = %d, %v", tc.off, tc.n, k, err)
		}
	}
	if cr.reads != 4 {
		t.Errorf("%d reads of the disk, want 4 (one per page)", cr.reads)
	}
	buf := make([]byte, 100)
	if k, err := c.ReadAt(buf, int64(len(data))-10); k != 10 || !errors.Is(err, io.EOF) {
		t.Errorf("read across the end = %d, %v", k, err)
	}
	if k, err := c.ReadAt(buf, int64(len(data))+10); k != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read beyond the end = %d, %v", k, err)
	}
	big := make([]byte, cachePage)
	before := cr.reads
	if k, err := c.ReadAt(big, 1); k != len(big) || err != nil || !bytes.Equal(big, data[1:1+cachePage]) || cr.reads != before+1 {
		t.Errorf("large read = %d, %v, %d reads", k, err, cr.reads-before)
	}
	// Eviction keeps at most cachePages pages.
	many := make([]byte, (cachePages+10)*cachePage)
	c = newPageCache(bytes.NewReader(many), int64(len(many)))
	for i := range cachePages + 10 {
		if _, err := c.ReadAt(buf[:1], int64(i)*cachePage); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.pages) != cachePages || c.lru.Len() != cachePages {
		t.Errorf("%d pages cached", len(c.pages))
	}
}
