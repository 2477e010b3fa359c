package vmdk

import (
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// benchDisk is 256 MiB: half pseudo-random, a quarter text, a quarter
// holes, written through the writer under test.
func benchSource(b *testing.B) []byte {
	b.Helper()
	data := make([]byte, 256<<20)
	rand.New(rand.NewSource(1)).Read(data[:128<<20])
	line := []byte("some compressible text in the benchmark disk\n")
	for i := 128 << 20; i < 192<<20; i++ {
		data[i] = line[i%len(line)]
	}
	return data
}

func benchWrite(b *testing.B, variant string) {
	data := benchSource(b)
	path := filepath.Join(b.TempDir(), "b.vmdk")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		w, err := Create(path, int64(len(data)), variant)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := w.WriteAt(data[off:off+1<<20], int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRead(b *testing.B, variant string) {
	data := benchSource(b)
	path := filepath.Join(b.TempDir(), "b.vmdk")
	w, err := Create(path, int64(len(data)), variant)
	if err != nil {
		b.Fatal(err)
	}
	w.WriteAt(data, 0)
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	img, err := Open(path, vmdisk.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	imgtest.BenchRead(b, img)
}

func BenchmarkWriteSparse(b *testing.B) { benchWrite(b, "monolithicSparse") }
func BenchmarkWriteStream(b *testing.B) { benchWrite(b, "streamOptimized") }
func BenchmarkReadSparse(b *testing.B)  { benchRead(b, "monolithicSparse") }
func BenchmarkReadStream(b *testing.B)  { benchRead(b, "streamOptimized") }
