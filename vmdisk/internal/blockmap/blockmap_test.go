package blockmap

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// memImage is a fully allocated in-memory disk, standing in for a parent.
type memImage struct{ b []byte }

func (m memImage) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}
func (m memImage) Size() int64     { return int64(len(m.b)) }
func (m memImage) SectorSize() int { return 512 }
func (m memImage) Extents() ([]vmdisk.Extent, error) {
	return []vmdisk.Extent{{Offset: 0, Length: m.Size()}}, nil
}
func (m memImage) Info() vmdisk.Info { return vmdisk.Info{Format: "mem"} }
func (m memImage) Close() error      { return nil }

// testMap builds a disk of four 4 KiB blocks plus a partial fifth one
// (18 KiB in all) over a file laid out as: block 0 present at 0, block 2
// partial at 4096 with its bitmap at 8192, block 3 zero, blocks 1 and 4
// absent. The parent (a smaller disk, 10 KiB) holds 0xAA bytes; the file
// holds 0x11 for block 0 and 0x22 for block 2. Block 2's bitmap has
// sectors 1, 2 and 7 set (512-byte sectors).
func testMap(msbFirst bool) (*Map, []byte) {
	const bs = 4096
	file := make([]byte, 3*bs)
	for i := range bs {
		file[i] = 0x11
		file[bs+i] = 0x22
	}
	bm := []byte{0b0000_0110 | 1<<7}
	if msbFirst {
		bm = []byte{0b0110_0000 | 1}
	}
	copy(file[2*bs:], bm)
	parent := memImage{bytes.Repeat([]byte{0xAA}, 10<<10)}
	m := &Map{Path: "test", Size: 18 << 10, BlockSize: bs, File: bytes.NewReader(file), Parent: parent,
		Lookup: func(b int64) Block {
			switch b {
			case 0:
				return Block{State: Present, Off: 0}
			case 2:
				return Block{State: Partial, Off: bs}
			case 3:
				return Block{State: Zero}
			}
			return Block{State: Absent}
		},
		BitmapOffset: func(int64) int64 { return 2 * bs }, BitmapBytes: 1, SectorSize: 512, MSBFirst: msbFirst}

	want := make([]byte, 18<<10)
	copy(want, file[:bs])
	for i := bs; i < 2*bs; i++ {
		want[i] = 0xAA
	}
	for s := range 8 {
		fill := byte(0xAA)
		if s == 1 || s == 2 || s == 7 {
			fill = 0x22
		}
		for i := 2*bs + s*512; i < 2*bs+(s+1)*512; i++ {
			if i < 10<<10 || fill == 0x22 {
				want[i] = fill
			}
		}
	}
	return m, want
}

func TestReadAt(t *testing.T) {
	for _, msb := range []bool{false, true} {
		m, want := testMap(msb)
		// Every piece size, so reads start and end inside sectors, runs
		// and blocks.
		for _, step := range []int{1, 100, 512, 777, 4096, 5000, len(want)} {
			got := make([]byte, len(want))
			for off := 0; off < len(want); off += step {
				end := min(off+step, len(want))
				if n, err := m.ReadAt(got[off:end], int64(off)); n != end-off || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v", end-off, off, n, err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("msb %v step %d: content differs", msb, step)
			}
		}
		p := make([]byte, 10)
		if n, err := m.ReadAt(p, m.Size-4); n != 4 || err != io.EOF {
			t.Fatalf("ReadAt across the end = %d, %v", n, err)
		}
		if n, err := m.ReadAt(p, m.Size); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt at the end = %d, %v", n, err)
		}
		if _, err := m.ReadAt(p, -1); err == nil {
			t.Fatal("negative offset accepted")
		}
	}
}

func TestExtents(t *testing.T) {
	m, _ := testMap(true)
	got, err := m.Extents()
	if err != nil {
		t.Fatal(err)
	}
	// Block 0 own, block 1 from the parent, block 2: sector 0 from the
	// parent, 1-2 own, 3-6 from the parent up to its end at 10 KiB, 7 own.
	want := []vmdisk.Extent{{Offset: 0, Length: 10 << 10}, {Offset: 8192 + 7*512, Length: 512}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	m.Parent = nil
	got, err = m.Extents()
	if err != nil {
		t.Fatal(err)
	}
	want = []vmdisk.Extent{{Offset: 0, Length: 4096}, {Offset: 8192 + 512, Length: 1024}, {Offset: 8192 + 7*512, Length: 512}}
	if !slices.Equal(got, want) {
		t.Fatalf("without parent: got %v, want %v", got, want)
	}
}
