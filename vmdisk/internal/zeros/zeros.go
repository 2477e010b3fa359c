// Package zeros detects all-zero byte ranges quickly, for writers that skip
// or mark zero data instead of storing it.
package zeros

import "bytes"

var block [64 << 10]byte

// Is reports whether b holds only zero bytes.
func Is(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(block))
		if !bytes.Equal(b[:n], block[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// Block returns a shared read-only slice of n zero bytes (n ≤ 64 KiB);
// callers must never write to it.
func Block(n int) []byte { return block[:n] }
