package fsread

import (
	"container/list"
	"io"
	"sync"
)

const (
	cachePage  = 64 << 10
	cachePages = 256 // 16 MiB
)

// pageCache keeps recently read 64 KiB pages of a partition, so that the
// small metadata reads of the drivers (inodes, directory blocks, FAT
// entries) cost one read of the underlying disk per page. That disk may
// be a backup whose every read decrypts and decompresses a chunk. Reads
// of a page or more (file content) bypass the cache.
type pageCache struct {
	r    io.ReaderAt
	size int64

	mu    sync.Mutex
	pages map[int64]*list.Element
	lru   list.List // of *cachedPage, most recent first
}

type cachedPage struct {
	n    int64
	data []byte
	err  error // a read error or io.EOF for a page cut short by the end
}

func newPageCache(r io.ReaderAt, size int64) *pageCache {
	return &pageCache{r: r, size: size, pages: map[int64]*list.Element{}}
}

func (c *pageCache) ReadAt(p []byte, off int64) (int, error) {
	if len(p) >= cachePage {
		return c.r.ReadAt(p, off)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		pg := c.page(pos / cachePage)
		i := int(pos - pg.n*cachePage)
		if i >= len(pg.data) {
			if pg.err != nil {
				return done, pg.err
			}
			return done, io.EOF
		}
		done += copy(p[done:], pg.data[i:])
	}
	return done, nil
}

// page returns page n, reading it on a miss. Called with c.mu held.
func (c *pageCache) page(n int64) *cachedPage {
	if e, ok := c.pages[n]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cachedPage)
	}
	var pg *cachedPage
	if c.lru.Len() >= cachePages {
		e := c.lru.Back()
		pg = c.lru.Remove(e).(*cachedPage)
		delete(c.pages, pg.n)
		pg.data = pg.data[:cap(pg.data)]
	} else {
		pg = &cachedPage{data: make([]byte, cachePage)}
	}
	pg.n, pg.err = n, nil
	want := min(int64(cachePage), c.size-n*cachePage)
	if want < 0 {
		want = 0
	}
	k, err := c.r.ReadAt(pg.data[:want], n*cachePage)
	pg.data = pg.data[:k]
	switch {
	case k < int(want) && err == nil:
		pg.err = io.ErrUnexpectedEOF
	case k < int(want):
		pg.err = err
	case want < cachePage:
		pg.err = io.EOF
	}
	if pg.err != nil && pg.err != io.EOF {
		// Do not keep a failed read: the next one retries.
		return pg
	}
	c.pages[n] = c.lru.PushFront(pg)
	return pg
}
