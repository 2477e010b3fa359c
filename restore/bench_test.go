//go:build linux

package restore

import (
	"context"
	"encoding/hex"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/repotest"
	"github.com/bunkerbackup/bunker/vmdisk"
)

const benchDiskSize = 256 << 20

// benchDisk stores a 256 MiB disk with 128 MiB of half-compressible data
// in a local repository, chunked in 256 KiB pieces.
func benchDisk(b *testing.B) (*repo.Repository, *repo.Disk) {
	r, _ := repotest.NewLocal(b)
	s := realStore{r, b}
	rnd := mrand.New(mrand.NewPCG(1, 1))
	content := make([]byte, benchDiskSize)
	for off := 0; off < benchDiskSize; off += 2 << 20 {
		if (off/(2<<20))%2 == 1 {
			continue // holes
		}
		copy(content[off:], compressibleBytes(rnd, 1<<20))
		for i := off + 1<<20; i < off+2<<20; i++ {
			content[i] = byte(rnd.Uint32())
		}
	}
	var chunks []repo.DiskChunk
	var data int64
	for off := 0; off < benchDiskSize; off += 256 << 10 {
		piece := content[off : off+256<<10]
		if allZero(piece) {
			continue
		}
		chunks = append(chunks, repo.DiskChunk{Offset: uint64(off), Length: 256 << 10, ID: s.saveData(piece)})
		data += 256 << 10
	}
	dg := vmdisk.NewDigest()
	dg.Write(content)
	digest := dg.Sum()
	d := &repo.Disk{Name: "bench", Size: benchDiskSize, SectorSize: 512, Digest: digest,
		ChunkLists: s.saveChunkList(chunks, 0), Chunks: uint64(len(chunks)), DataBytes: data}
	s.flush()
	return repotest.Reopen(b, r), d
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start: on a busy
// machine it is steadier than the wall time.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func BenchmarkDiskRestore(b *testing.B) {
	r, d := benchDisk(b)
	dir := b.TempDir()
	b.SetBytes(d.Size)
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for range b.N {
		w := newRawWriter(b, filepath.Join(dir, "disk.raw"), d.Size)
		if _, err := Disk(context.Background(), r, d, w, DiskOptions{}); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
}

func BenchmarkDiskDeltaIdentical(b *testing.B) {
	r, d := benchDisk(b)
	path := filepath.Join(b.TempDir(), "disk.raw")
	w := newRawWriter(b, path, d.Size)
	if _, err := Disk(context.Background(), r, d, w, DiskOptions{}); err != nil {
		b.Fatal(err)
	}
	w.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(d.Size)
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for range b.N {
		st, err := DiskDelta(context.Background(), r, d, f, DiskOptions{BlobID: r.BlobID})
		if err != nil || st.BytesWritten != 0 {
			b.Fatal(err, st.BytesWritten)
		}
	}
}

func BenchmarkVerifyDisk(b *testing.B) {
	r, d := benchDisk(b)
	path := filepath.Join(b.TempDir(), "disk.raw")
	w := newRawWriter(b, path, d.Size)
	if _, err := Disk(context.Background(), r, d, w, DiskOptions{}); err != nil {
		b.Fatal(err)
	}
	w.Close()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(d.Size)
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for range b.N {
		if _, err := VerifyDisk(context.Background(), r, d, f, DiskOptions{BlobID: r.BlobID}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilesRestore restores 2000 small files and one 64 MiB file.
func BenchmarkFilesRestore(b *testing.B) {
	r, _ := repotest.NewLocal(b)
	s := realStore{r, b}
	src := b.TempDir()
	rnd := mrand.New(mrand.NewPCG(2, 2))
	var total int64
	for i := range 2000 {
		d := filepath.Join(src, "d"+string(rune('a'+i%20)))
		os.MkdirAll(d, 0o755)
		data := compressibleBytes(rnd, 1000+rnd.IntN(20000))
		total += int64(len(data))
		writeFile(b, filepath.Join(d, "f"+hex.EncodeToString([]byte{byte(i >> 8), byte(i)})), data, 0o644)
	}
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	writeFile(b, filepath.Join(src, "big"), big, 0o644)
	total += int64(len(big))
	sn := snapshotDir(b, s, src, 1<<20)
	s.flush()
	r = repotest.Reopen(b, r)
	b.SetBytes(total)
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for range b.N {
		dst := filepath.Join(b.TempDir(), "t")
		if _, err := Files(context.Background(), r, sn, dst, FileOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskDelta2Percent restores over a target in which 2% of the
// chunks differ.
func BenchmarkDiskDelta2Percent(b *testing.B) {
	r, d := benchDisk(b)
	path := filepath.Join(b.TempDir(), "disk.raw")
	w := newRawWriter(b, path, d.Size)
	if _, err := Disk(context.Background(), r, d, w, DiskOptions{}); err != nil {
		b.Fatal(err)
	}
	w.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var chunks []repo.DiskChunk
	r.LoadChunkList(context.Background(), d.ChunkLists, func(c repo.DiskChunk) error {
		chunks = append(chunks, c)
		return nil
	})
	b.SetBytes(d.Size)
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		for i := 0; i < len(chunks); i += 50 {
			f.WriteAt([]byte{0x42}, int64(chunks[i].Offset)+7)
		}
		b.StartTimer()
		start := cpuTime()
		st, err := DiskDelta(context.Background(), r, d, f, DiskOptions{BlobID: r.BlobID})
		cpu += cpuTime() - start
		if err != nil || st.ChunksWritten != uint64((len(chunks)+49)/50) {
			b.Fatal(err, st.ChunksWritten)
		}
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}
