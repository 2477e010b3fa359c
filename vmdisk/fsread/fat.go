package fsread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

type fileWithRanges interface {
	GetDiskRanges() ([]fat12.DiskRange, error)
}

type fatFS struct {
	r    io.ReaderAt
	size int64
	kind string // fat12, fat16 or fat32
	geo  fatGeometry
	next []uint32 // the FAT: next[c] is the cluster after c
	lib  interface {
		ReadDir(p string) ([]fs.DirEntry, error)
	}
	open func(p string) (fileWithRanges, error)
}

// fatGeometry is what the boot sector says about a FAT volume.
type fatGeometry struct {
	kind            string
	bytesPerSector  int64
	fatOffset       int64
	fatBytes        int64
	clusters        uint32 // data clusters, numbered from 2
	fatCount        int64
	totalBytes      int64
	bytesPerCluster int64
	dataOffset      int64 // byte offset of cluster 2
}

func fatGeometryOf(bs []byte) (fatGeometry, error) {
	le := binary.LittleEndian
	g := fatGeometry{}
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	g.fatCount = int64(bs[16])
	rootEntries := int64(le.Uint16(bs[17:]))
	total := int64(le.Uint16(bs[19:]))
	if total == 0 {
		total = int64(le.Uint32(bs[32:]))
	}
	fatSectors := int64(le.Uint16(bs[22:]))
	if fatSectors == 0 {
		fatSectors = int64(le.Uint32(bs[36:]))
	}
	if bs[510] != 0x55 || bs[511] != 0xaa || bps < 512 || bps > 4096 || bps&(bps-1) != 0 ||
		spc == 0 || spc&(spc-1) != 0 || reserved == 0 || g.fatCount == 0 || fatSectors == 0 {
		return g, fmt.Errorf("bad FAT boot sector: %w", ErrCorrupt)
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	data := total - reserved - g.fatCount*fatSectors - rootSectors
	if data <= 0 {
		return g, fmt.Errorf("FAT volume without data area: %w", ErrCorrupt)
	}
	n := data / spc
	switch {
	case n < 4085:
		g.kind = "fat12"
	case n < 65525:
		g.kind = "fat16"
	default:
		g.kind = "fat32"
	}
	if n > 0x0ffffff5 {
		return g, fmt.Errorf("%d clusters: %w", n, ErrCorrupt)
	}
	g.clusters = uint32(n)
	g.bytesPerSector = bps
	g.bytesPerCluster = bps * spc
	g.fatOffset = reserved * bps
	g.dataOffset = (reserved + g.fatCount*fatSectors + rootSectors) * bps
	g.fatBytes = fatSectors * bps
	g.totalBytes = total * bps
	return g, nil
}

// fatNext decodes the FAT: next[c] is the cluster after c.
func fatNext(g fatGeometry, fat []byte) []uint32 {
	le := binary.LittleEndian
	n := int(g.clusters) + 2
	next := make([]uint32, n)
	switch g.kind {
	case "fat12":
		for c := 0; c < n && c*3/2+2 <= len(fat); c++ {
			v := uint32(le.Uint16(fat[c*3/2:]))
			if c&1 == 1 {
				v >>= 4
			}
			next[c] = v & 0xfff
		}
	case "fat16":
		for c := 0; c < n && c*2+2 <= len(fat); c++ {
			next[c] = uint32(le.Uint16(fat[c*2:]))
		}
	default:
		for c := 0; c < n && c*4+4 <= len(fat); c++ {
			next[c] = le.Uint32(fat[c*4:]) & 0x0fffffff
		}
	}
	return next
}

// fatLoop returns a cluster on a loop of FAT links, or 0. The FAT library
// follows chains without a bound; a loop would hang it.
func fatLoop(next []uint32) uint32 {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, len(next))
	var path []uint32
	for c := 2; c < len(next); c++ {
		if state[c] != unseen {
			continue
		}
		path = path[:0]
		x := uint32(c)
		for x >= 2 && int(x) < len(next) && state[x] == unseen {
			state[x] = onPath
			path = append(path, x)
			x = next[x]
		}
		if x >= 2 && int(x) < len(next) && state[x] == onPath {
			return x
		}
		for _, y := range path {
			state[y] = done
		}
	}
	return 0
}

func openFAT(r io.ReaderAt, size int64, fstype string) (*fatFS, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("read boot sector: %w", err)
	}
	g, err := fatGeometryOf(bs)
	if err != nil {
		return nil, err
	}
	if fstype != "vfat" && fstype != g.kind {
		return nil, fmt.Errorf("boot sector describes %s, not %s: %w", g.kind, fstype, ErrCorrupt)
	}
	if g.totalBytes > size {
		return nil, fmt.Errorf("%s volume of %d bytes in a %d-byte partition: %w", g.kind, g.totalBytes, size, ErrCorrupt)
	}
	if g.fatCount != 2 {
		return nil, fmt.Errorf("%s with %d FATs: %w", g.kind, g.fatCount, ErrUnsupported)
	}
	if g.kind != "fat32" && g.bytesPerSector != 512 {
		return nil, fmt.Errorf("%s with %d-byte sectors: %w", g.kind, g.bytesPerSector, ErrUnsupported)
	}
	fat := make([]byte, g.fatBytes)
	if _, err := r.ReadAt(fat, g.fatOffset); err != nil {
		return nil, fmt.Errorf("read FAT: %w", err)
	}
	next := fatNext(g, fat)
	if c := fatLoop(next); c != 0 {
		return nil, fmt.Errorf("cluster chain loops at cluster %d: %w", c, ErrCorrupt)
	}

	st := &storage{r: r, size: size}
	f := &fatFS{r: r, size: size, kind: g.kind, geo: g, next: next}
	switch g.kind {
	case "fat12":
		lib, err := fat12.Read(st, size, 0, 512)
		if err != nil {
			return nil, err
		}
		f.lib = lib
		f.open = func(p string) (fileWithRanges, error) { return asRanges(lib.OpenFile(p, os.O_RDONLY)) }
	case "fat16":
		lib, err := fat16.Read(st, size, 0, 512)
		if err != nil {
			return nil, err
		}
		f.lib = lib
		f.open = func(p string) (fileWithRanges, error) { return asRanges(lib.OpenFile(p, os.O_RDONLY)) }
	default:
		lib, err := fat32.Read(st, size, 0, g.bytesPerSector)
		if err != nil {
			return nil, err
		}
		f.lib = lib
		f.open = func(p string) (fileWithRanges, error) { return asRanges(lib.OpenFile(p, os.O_RDONLY)) }
	}
	return f, nil
}

func asRanges(f any, err error) (fileWithRanges, error) {
	if err != nil {
		return nil, err
	}
	fr, ok := f.(fileWithRanges)
	if !ok {
		return nil, fmt.Errorf("FAT library returned %T", f)
	}
	return fr, nil
}

func (f *fatFS) foldCase() bool { return true }

func (f *fatFS) root() (*node, error) {
	return &node{name: ".", mode: fs.ModeDir | 0o755}, nil
}

func (f *fatFS) list(dir *node, p string) ([]*node, error) {
	des, err := f.lib.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := make([]*node, 0, len(des))
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			return nil, err
		}
		n := &node{name: de.Name(), mode: 0o644, size: info.Size(), mtime: info.ModTime(), id: fatFirstCluster(de)}
		if de.IsDir() {
			n.mode, n.size = fs.ModeDir|0o755, 0
		}
		if n.name == "" || n.name == "." || n.name == ".." {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// fatFirstCluster reads a directory entry's first cluster, which the
// library keeps unexported, by reflection (nil if it cannot).
func fatFirstCluster(de fs.DirEntry) any {
	v := reflect.ValueOf(de)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	c := v.FieldByName("clusterLocation")
	if !c.IsValid() || c.Kind() != reflect.Uint32 {
		return nil
	}
	return uint32(c.Uint())
}

func (f *fatFS) content(n *node, p string) (io.ReaderAt, error) {
	if n.size == 0 {
		return &rangeReader{r: f.r}, nil
	}
	if first, ok := n.id.(uint32); ok {
		return f.chain(first, n.size)
	}
	return f.libContent(n, p)
}

// chain maps a file of size bytes from its first cluster through the FAT
// (checked for loops when the volume was opened).
func (f *fatFS) chain(first uint32, size int64) (io.ReaderAt, error) {
	g := f.geo
	rr := &rangeReader{r: f.r}
	var total int64
	for c := first; total < size; c = f.next[c] {
		if c < 2 || int(c) >= len(f.next) {
			return nil, fmt.Errorf("cluster chain of %d bytes for a %d-byte file ends at cluster %#x: %w", total, size, c, ErrCorrupt)
		}
		off := g.dataOffset + int64(c-2)*g.bytesPerCluster
		if off+g.bytesPerCluster > f.size {
			return nil, fmt.Errorf("cluster %d outside the volume: %w", c, ErrCorrupt)
		}
		if k := len(rr.runs) - 1; k >= 0 && rr.runs[k].physical+rr.runs[k].length == off {
			rr.runs[k].length += g.bytesPerCluster
		} else {
			rr.runs = append(rr.runs, run{logical: total, physical: off, length: g.bytesPerCluster})
		}
		total += g.bytesPerCluster
	}
	return rr, nil
}

// libContent maps a file through the library's cluster chain.
func (f *fatFS) libContent(n *node, p string) (io.ReaderAt, error) {
	fl, err := f.open(p)
	if err != nil {
		return nil, err
	}
	ranges, err := fl.GetDiskRanges()
	if err != nil {
		return nil, err
	}
	rr := &rangeReader{r: f.r}
	var total int64
	for _, dr := range ranges {
		off, n := int64(dr.Offset), int64(dr.Length)
		if off < 0 || n < 0 || off+n > f.size {
			return nil, fmt.Errorf("clusters at %d+%d outside the volume: %w", off, n, ErrCorrupt)
		}
		rr.runs = append(rr.runs, run{logical: total, physical: off, length: n})
		total += n
	}
	if total < n.size {
		return nil, fmt.Errorf("cluster chain of %d bytes for a %d-byte file: %w", total, n.size, ErrCorrupt)
	}
	return rr, nil
}

func (f *fatFS) readlink(n *node, p string) (string, error) {
	return "", fs.ErrInvalid
}

// run maps length bytes of a file from logical to physical.
type run struct{ logical, physical, length int64 }

// rangeReader reads a file laid out as contiguous runs; bytes beyond the
// runs read as zeros.
type rangeReader struct {
	r    io.ReaderAt
	runs []run
}

func (rr *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for _, ru := range rr.runs {
		if done == len(p) {
			break
		}
		pos := off + int64(done)
		if pos >= ru.logical+ru.length || pos < ru.logical {
			continue
		}
		k := min(int64(len(p)-done), ru.logical+ru.length-pos)
		n, err := rr.r.ReadAt(p[done:done+int(k)], ru.physical+pos-ru.logical)
		done += n
		if n < int(k) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, err
		}
	}
	clear(p[done:])
	return len(p), nil
}

// storage is a read-only go-diskfs backend over an io.ReaderAt.
type storage struct {
	r    io.ReaderAt
	size int64
	off  int64
}

var _ backend.Storage = (*storage)(nil)

func (s *storage) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	if rest := s.size - off; int64(len(p)) > rest {
		n, err := s.r.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return s.r.ReadAt(p, off)
}

func (s *storage) Read(p []byte) (int, error) {
	n, err := s.ReadAt(p, s.off)
	s.off += int64(n)
	return n, err
}

func (s *storage) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.size
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	s.off = offset
	return offset, nil
}

func (s *storage) Stat() (fs.FileInfo, error)              { return storageInfo{s.size}, nil }
func (s *storage) Close() error                            { return nil }
func (s *storage) Sys() (*os.File, error)                  { return nil, backend.ErrNotSuitable }
func (s *storage) Writable() (backend.WritableFile, error) { return nil, backend.ErrIncorrectOpenMode }
func (s *storage) Path() string                            { return "" }

type storageInfo struct{ size int64 }

func (i storageInfo) Name() string       { return "partition" }
func (i storageInfo) Size() int64        { return i.size }
func (i storageInfo) Mode() fs.FileMode  { return 0o444 }
func (i storageInfo) ModTime() time.Time { return time.Time{} }
func (i storageInfo) IsDir() bool        { return false }
func (i storageInfo) Sys() any           { return nil }
