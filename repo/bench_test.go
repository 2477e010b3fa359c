//go:build unix

package repo_test

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

// discard stores nothing but packs; it measures SaveBlob without storage
// cost.
type discard struct{ *mem.Backend }

func (d discard) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.PackFile {
		return ctx.Err()
	}
	return d.Backend.Save(ctx, h, data)
}

func benchSaveBlob(b *testing.B, data []byte) {
	ctx := context.Background()
	r := repotest.NewOn(b, discard{mem.New()})
	var n atomic.Uint64
	b.SetBytes(int64(len(data)))
	b.SetParallelism(1) // GOMAXPROCS goroutines: 2 on the reference machine
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, len(data))
		copy(buf, data)
		for pb.Next() {
			binary.LittleEndian.PutUint64(buf, n.Add(1))
			id := r.BlobID(buf)
			if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	reportCPU(b, cpu0, len(data))
}

// cpuTime returns the CPU time used by the process. Reported next to wall
// time, MB per CPU-second shows the cost of SaveBlob even on a machine busy
// with other work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, size int) {
	if d := cpuTime() - start; d > 0 {
		b.ReportMetric(float64(b.N)*float64(size)/1e6/d.Seconds(), "MB/cpu-s")
	}
}

func BenchmarkSaveBlobIncompressible(b *testing.B) { benchSaveBlob(b, randomBytes(1, 1<<20)) }
func BenchmarkSaveBlobCompressible(b *testing.B)   { benchSaveBlob(b, compressible(1, 1<<20)) }

func BenchmarkLoadBlob(b *testing.B) {
	ctx := context.Background()
	r := repotest.New(b)
	d := compressible(2, 1<<20)
	id := r.BlobID(d)
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, d); err != nil {
		b.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(d)))
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { reportCPU(b, cpu0, len(d)) }()
	b.RunParallel(func(pb *testing.PB) {
		var buf []byte
		for pb.Next() {
			var err error
			if buf, err = r.LoadBlob(ctx, repo.DataBlob, id, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
