package qcow2

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// memImage is an in-memory backing file for fuzzing.
type memImage struct{ b []byte }

func (m *memImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memImage) Size() int64       { return int64(len(m.b)) }
func (m *memImage) SectorSize() int   { return 512 }
func (m *memImage) Info() vmdisk.Info { return vmdisk.Info{Format: "mem", Files: []string{"mem"}} }
func (m *memImage) Close() error      { return nil }
func (m *memImage) Extents() ([]vmdisk.Extent, error) {
	return []vmdisk.Extent{{Offset: 4096, Length: int64(len(m.b)) / 2}}, nil
}

// FuzzOpen feeds mutated images to the header parser, the L1/L2 walk
// (Extents) and ReadAt. Seeds are small qemu-img images in testdata.
func FuzzOpen(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.qcow2")
	if len(seeds) == 0 {
		f.Fatal("no seed images in testdata")
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	backing := &memImage{b: bytes.Repeat([]byte("backing!"), 32<<10)}
	opener := func(path, format string, opts vmdisk.OpenOptions) (vmdisk.Image, error) {
		return backing, nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := open(bytes.NewReader(data), int64(len(data)), "fuzz.qcow2", vmdisk.OpenOptions{Force: true}, nil, opener)
		if err != nil {
			return
		}
		if img.Size() > 64<<20 {
			return // the walk is linear in the virtual size
		}
		ext, err := img.Extents()
		if err == nil {
			last := int64(0)
			for _, e := range ext {
				if e.Offset < last || e.Length <= 0 || e.End() > img.Size() {
					t.Fatalf("bad extents %v (size %d)", ext, img.Size())
				}
				last = e.End()
			}
		}
		buf := make([]byte, 64<<10)
		for off := int64(0); off < min(img.Size(), 4<<20); off += int64(len(buf)) {
			n, err := img.ReadAt(buf, off)
			if err != nil && err != io.EOF {
				var fe *vmdisk.FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("ReadAt error is not a FormatError: %v", err)
				}
				break
			}
			if n == 0 {
				t.Fatalf("ReadAt(%d) read nothing", off)
			}
		}
	})
}

// TestSeedsOpen makes sure the fuzz seeds are valid images.
func TestSeedsOpen(t *testing.T) {
	seeds, _ := filepath.Glob("testdata/*.qcow2")
	for _, p := range seeds {
		b, _ := os.ReadFile(p)
		img, err := open(bytes.NewReader(b), int64(len(b)), p, vmdisk.OpenOptions{}, nil,
			func(string, string, vmdisk.OpenOptions) (vmdisk.Image, error) { return &memImage{}, nil })
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if _, err := img.Extents(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
