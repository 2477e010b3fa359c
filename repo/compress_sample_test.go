package repo

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestWorthCompressing(t *testing.T) {
	random := make([]byte, 256<<10)
	rand.Read(random)
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 6000)
	half := append(append([]byte(nil), random[:128<<10]...), text[:128<<10]...)
	for _, c := range []struct {
		name string
		data []byte
		want bool
	}{
		{"random", random, false},
		{"text", text, true},
		{"random then text", half, true},
		{"small random", random[:1000], true}, // small blobs are always tried
	} {
		if got := worthCompressing(c.data); got != c.want {
			t.Errorf("%s: worthCompressing = %v, want %v", c.name, got, c.want)
		}
	}
}
