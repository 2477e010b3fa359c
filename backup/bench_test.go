//go:build unix

package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend/local"
	"github.com/bunkerbackup/bunker/vmdisk"
)

// mixedBytes is realistic content: a third random, two thirds text, in
// 1 MiB pieces.
func mixedBytes(n int, seed uint64) []byte {
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		k := min(1<<20, n-len(out))
		if i%3 == 0 {
			out = append(out, randomBytes(k, seed+uint64(i))...)
		} else {
			out = append(out, textBytes(k, seed+uint64(i))...)
		}
	}
	return out
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs fn b.N times into a fresh repository each (after setup,
// when not nil), reporting throughput, throughput per CPU second (the
// figure that stays meaningful on a loaded machine) and how many cores
// were busy.
func measure(b *testing.B, bytes int64, setup func(r Repo) *repo.Snapshot, fn func(r Repo, parent *repo.Snapshot)) {
	b.SetBytes(bytes)
	var wall, cpu time.Duration
	for range b.N {
		b.StopTimer()
		r, _ := newRepo(b)
		var parent *repo.Snapshot
		if setup != nil {
			parent = setup(r)
		}
		b.StartTimer()
		t0, c0 := time.Now(), cpuTime()
		fn(r, parent)
		wall += time.Since(t0)
		cpu += cpuTime() - c0
	}
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	b.ReportMetric(float64(bytes)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
}

func BenchmarkBackupLargeFile(b *testing.B) {
	dir := b.TempDir()
	const size = 256 << 20
	writeFile(b, filepath.Join(dir, "large"), mixedBytes(size, 1))
	measure(b, size, nil, func(r Repo, _ *repo.Snapshot) {
		if _, err := Files(context.Background(), r, []string{dir}, Options{}); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkBackupTree(b *testing.B) {
	dir := b.TempDir()
	var total int64
	for i := range 3000 {
		n := 100 + (i*7919)%20000
		if i%500 == 0 {
			n = 8 << 20
		}
		writeFile(b, filepath.Join(dir, fmt.Sprint(i%40), fmt.Sprint(i/40%7), fmt.Sprintf("f%d", i)), mixedBytes(n, uint64(i)))
		total += int64(n)
	}
	b.Run("first", func(b *testing.B) {
		measure(b, total, nil, func(r Repo, _ *repo.Snapshot) {
			if _, err := Files(context.Background(), r, []string{dir}, Options{}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("unchanged", func(b *testing.B) {
		measure(b, total, func(r Repo) *repo.Snapshot {
			parent, err := Files(context.Background(), r, []string{dir}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			return parent
		}, func(r Repo, parent *repo.Snapshot) {
			if _, err := Files(context.Background(), r, []string{dir}, Options{Parent: parent}); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func BenchmarkBackupDisk(b *testing.B) {
	// 512 MiB disk, half of it data in runs of 1-8 MiB.
	const size = 512 << 20
	data := make([]byte, size)
	for off, i := 0, 0; off < size; i++ {
		n := (1 + i%8) << 20
		if i%2 == 0 {
			copy(data[off:min(off+n, size)], mixedBytes(n, uint64(i)))
		}
		off += n
	}
	im := newMemImage(data, 64<<10, false)
	measure(b, size, nil, func(r Repo, _ *repo.Snapshot) {
		if _, err := Disks(context.Background(), r, []DiskSource{{Name: "d", Image: im}}, Options{}); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkBackupSparseDisk measures a mostly empty disk, dominated by
// hashing the zeros of the whole-disk digest.
func BenchmarkBackupSparseDisk(b *testing.B) {
	const size = 4 << 30
	im := &sparseImage{size: size, data: mixedBytes(64<<20, 3), at: 1 << 30}
	measure(b, size, nil, func(r Repo, _ *repo.Snapshot) {
		if _, err := Disks(context.Background(), r, []DiskSource{{Name: "d", Image: im}}, Options{}); err != nil {
			b.Fatal(err)
		}
	})
}

// sparseImage is a large disk holding data at one offset.
type sparseImage struct {
	size int64
	data []byte
	at   int64
}

func (im *sparseImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= im.size {
		return 0, io.EOF
	}
	clear(p)
	s, e := max(off, im.at), min(off+int64(len(p)), im.at+int64(len(im.data)))
	if s < e {
		copy(p[s-off:], im.data[s-im.at:e-im.at])
	}
	return len(p), nil
}

func (im *sparseImage) Size() int64     { return im.size }
func (im *sparseImage) SectorSize() int { return 512 }
func (im *sparseImage) Extents() ([]vmdisk.Extent, error) {
	return []vmdisk.Extent{{Offset: im.at, Length: int64(len(im.data))}}, nil
}
func (im *sparseImage) Info() vmdisk.Info { return vmdisk.Info{Format: "test"} }
func (im *sparseImage) Close() error      { return nil }

// BenchmarkBackupLargeFileLocal backs up one large file into a local
// directory repository and reports the peak Go heap, which shows that
// memory stays bounded (the mem backend would hold the repository itself).
func BenchmarkBackupLargeFileLocal(b *testing.B) {
	dir := b.TempDir()
	const size = 512 << 20
	f, err := os.Create(filepath.Join(dir, "large"))
	if err != nil {
		b.Fatal(err)
	}
	for off := 0; off < size; off += 64 << 20 {
		f.Write(mixedBytes(64<<20, uint64(off)))
	}
	f.Close()
	runtime.GC()
	var peak atomic.Uint64
	b.SetBytes(size)
	for range b.N {
		r, err := repo.Init(context.Background(), local.New(filepath.Join(b.TempDir(), "repo")), "secret", repo.InitOptions{})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		if _, err := Files(context.Background(), r, []string{filepath.Join(dir, "large")}, Options{}); err != nil {
			b.Fatal(err)
		}
		close(done)
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}
