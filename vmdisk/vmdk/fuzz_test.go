package vmdk

import (
	"bytes"
	"compress/gzip"
	"io"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// seedImages returns the committed qemu-made images (testdata/*.vmdk.gz:
// a 2 MiB monolithicSparse, its qemu streamOptimized conversion, and a
// zeroed-grain child of the first) plus a VMware-layout stream written by
// this package.
func seedImages(f *testing.F) map[string][]byte {
	return seedImagesT(f)
}

func seedImagesT(f testing.TB) map[string][]byte {
	f.Helper()
	out := map[string][]byte{}
	for _, name := range []string{"tiny-sparse.vmdk", "tiny-stream-qemu.vmdk", "tiny-child.vmdk"} {
		gz, err := os.ReadFile(filepath.Join("testdata", name+".gz"))
		if err != nil {
			f.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			f.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			f.Fatal(err)
		}
		out[name] = b
	}
	dir := f.TempDir()
	src := filepath.Join(dir, "tiny-sparse.vmdk")
	if err := os.WriteFile(src, out["tiny-sparse.vmdk"], 0o600); err != nil {
		f.Fatal(err)
	}
	img, err := Open(src, vmdisk.OpenOptions{})
	if err != nil {
		f.Fatal(err)
	}
	defer img.Close()
	stream := filepath.Join(dir, "stream.vmdk")
	w, err := Create(stream, img.Size(), "streamOptimized")
	if err != nil {
		f.Fatal(err)
	}
	buf := make([]byte, img.Size())
	if _, err := img.ReadAt(buf, 0); err != nil {
		f.Fatal(err)
	}
	if _, err := w.WriteAt(buf, 0); err != nil {
		f.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	if out["tiny-stream-vmware.vmdk"], err = os.ReadFile(stream); err != nil {
		f.Fatal(err)
	}
	return out
}

func FuzzHeader(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b[:headerSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, msg := parseHeader(b)
		if msg != "" {
			return
		}
		// A valid header survives a round trip and has a bounded directory.
		h2, msg := parseHeader(h.marshal())
		if msg != "" && h.Flags&flagNewlineTest == 0 {
			t.Fatalf("re-parse: %s", msg)
		}
		if msg == "" && (h2.Capacity != h.Capacity || h2.GrainSize != h.GrainSize || h2.GDOffset != h.GDOffset) {
			t.Fatalf("round trip changed the header: %+v -> %+v", h, h2)
		}
		if h.gdEntries() > maxCapacity {
			t.Fatalf("gdEntries %d", h.gdEntries())
		}
	})
}

func FuzzDescriptor(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b[512 : 21*512])
	}
	f.Add([]byte("# Disk DescriptorFile\r\nversion=1\r\nCID=fffffffe\r\nparentCID=ffffffff\r\ncreateType=\"vmfs\"\r\n" +
		"RW 81923 VMFS \"esx disk-flat.vmdk\"\r\nRW 10 ZERO\r\nRDONLY 5 FLAT \"x\" 7\r\nddb.uuid = \"60 00\"\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDescriptor(b)
		if err != nil {
			return
		}
		if d.CreateType == "" {
			t.Fatal("descriptor without createType accepted")
		}
		for _, e := range d.Extents {
			if e.Sectors < 0 || e.Offset < 0 || (e.Type != "ZERO" && e.File == "") {
				t.Fatalf("bad extent accepted: %+v", e)
			}
		}
	})
}

// FuzzImage opens fuzzed image files (with the real parent of the child
// seed next to them) and walks the grain tables and grains.
func FuzzImage(f *testing.F) {
	seeds := seedImages(f)
	for _, b := range seeds {
		f.Add(b)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tiny-sparse.vmdk"), seeds["tiny-sparse.vmdk"], 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.vmdk")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		img, err := Open(path, vmdisk.OpenOptions{Force: true})
		if err != nil {
			return
		}
		defer img.Close()
		ext, err := img.Extents()
		if err != nil {
			return
		}
		imgtest.CheckExtents(t, ext, img.Size())
		// Read the first allocated megabytes, in grain-crossing pieces.
		buf := make([]byte, 100000)
		budget := 4 << 20
		for _, e := range ext {
			for off := e.Offset; off < e.End() && budget > 0; off += int64(len(buf)) {
				n, err := img.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					break
				}
				budget -= n
			}
		}
	})
}

// TestMutations is a deterministic stand-in for long fuzzing runs: it
// damages random bytes (mostly in the metadata at the front) of every seed
// image and checks that opening, walking and reading never panics or
// hangs.
func TestMutations(t *testing.T) {
	seeds := seedImagesT(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tiny-sparse.vmdk"), seeds["tiny-sparse.vmdk"], 0o600); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 250; i++ {
		for _, name := range slices.Sorted(maps.Keys(seeds)) {
			b := append([]byte(nil), seeds[name]...)
			for k := 0; k < 1+rnd.Intn(8); k++ {
				pos := rnd.Intn(len(b))
				if rnd.Intn(2) == 0 {
					pos = rnd.Intn(min(len(b), 12<<10))
				}
				b[pos] = byte(rnd.Intn(256))
			}
			path := filepath.Join(dir, "mutated.vmdk")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			openAndReadAll(path, vmdisk.OpenOptions{Force: true})
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s mutation %d took %v", name, i, d)
			}
		}
	}
}
