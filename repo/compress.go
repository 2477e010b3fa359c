package repo

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The zstd encoder and decoder are shared: EncodeAll and DecodeAll are safe
// for concurrent use and keep a pool of internal states (one per CPU), so no
// caller pays for setting one up.
//
// The encoder's window is 1 MiB rather than the default level's 8 MiB: each
// encoder state keeps a history buffer of the window's size, which for a
// file chunk of several MiB would be 8 MiB per CPU. Matches further back
// than 1 MiB are rare: on the benchmark's 4 GiB file, chunked with the
// default file parameters, both windows give the same size within 0.01%.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
)

// zstdWindow is the encoder's window size.
const zstdWindow = 1 << 20

// newEncoder returns a shared encoder at level with the options above.
func newEncoder(level zstd.EncoderLevel) *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(true),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(fmt.Sprintf("create zstd encoder: %v", err))
	}
	return enc
}

func zstdInit() {
	zstdOnce.Do(func() {
		zstdEnc = newEncoder(zstd.SpeedDefault)
		var err error
		zstdDec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			panic(fmt.Sprintf("create zstd decoder: %v", err))
		}
	})
}

// zstdMaxEnc is the encoder of compression "max": klauspost's "better"
// level (comparable to zstd level 7), about 1.5x the time of the default
// level; on the benchmark's file tree it stores 8.6% fewer bytes. It is
// made on first use.
var (
	zstdMaxOnce sync.Once
	zstdMaxEnc  *zstd.Encoder
)

// compress appends the zstd frame of src to dst, at the stronger level when
// max is set.
func compress(dst, src []byte, max bool) []byte {
	if max {
		zstdMaxOnce.Do(func() { zstdMaxEnc = newEncoder(zstd.SpeedBetterCompression) })
		return zstdMaxEnc.EncodeAll(src, dst)
	}
	zstdInit()
	return zstdEnc.EncodeAll(src, dst)
}

// decompress decodes the zstd frame src, which must hold exactly plainLen
// bytes, appending to dst. It never allocates more than plainLen bytes.
func decompress(dst, src []byte, plainLen int) ([]byte, error) {
	zstdInit()
	// DecodeAll is limited to the spare capacity of dst; one byte more than
	// plainLen makes a frame that is too long detectable.
	if cap(dst)-len(dst) < plainLen+1 {
		n := make([]byte, len(dst), len(dst)+plainLen+1)
		copy(n, dst)
		dst = n
	}
	start := len(dst)
	out, err := zstdDec.DecodeAll(src, dst)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(out)-start != plainLen {
		return nil, fmt.Errorf("decompress: got %d bytes, want %d", len(out)-start, plainLen)
	}
	return out, nil
}

// pays reports whether compressed output of size c is worth storing in place
// of plain input of size p: it must be smaller.
func pays(c, p int) bool {
	return c < p
}
