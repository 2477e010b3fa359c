package chunk

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/zeebo/blake3"
)

// Parameters for tests: restic's for files, and a disk set.
var (
	fileParams = Params{Min: 512 << 10, Max: 8 << 20, AvgBits: 20}
	diskParams = Params{Min: 64 << 10, Max: 2 << 20, AvgBits: 18}
)

// testPol is restic's test polynomial.
const testPol = 0x3DA3358B4DC173

// testData returns n pseudo-random bytes from a fixed xorshift generator, so
// pinned boundaries do not depend on math/rand's implementation.
func testData(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed | 1
	for i := 0; i+8 <= n; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for k := 0; k < 8; k++ {
			b[i+k] = byte(x >> (8 * k))
		}
	}
	return b
}

func split(t testing.TB, s *Splitter, pieces ...[]byte) [][]byte {
	t.Helper()
	var out [][]byte
	emit := func(b *Buffer) error {
		out = append(out, append([]byte(nil), b.Data...))
		b.Release()
		return nil
	}
	for _, p := range pieces {
		if err := s.Write(p, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(emit); err != nil {
		t.Fatal(err)
	}
	return out
}

func lengths(chunks [][]byte) []int {
	l := make([]int, len(chunks))
	for i, c := range chunks {
		l[i] = len(c)
	}
	return l
}

func ExampleSplitter() {
	data := testData(4<<20, 1)
	s, err := NewSplitter(testPol, diskParams, nil)
	if err != nil {
		panic(err)
	}
	emit := func(b *Buffer) error {
		fmt.Println(len(b.Data))
		b.Release()
		return nil
	}
	s.Write(data, emit)
	s.Flush(emit)
	// Output:
	// 281349
	// 268232
	// 307177
	// 183504
	// 163222
	// 578880
	// 291532
	// 187267
	// 449702
	// 387122
	// 1046403
	// 49914
}

func TestSplitterPieceSizesDoNotMatter(t *testing.T) {
	data := testData(6<<20, 2)
	s, err := NewSplitter(testPol, diskParams, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := split(t, s, data)
	if !bytes.Equal(bytes.Join(want, nil), data) {
		t.Fatal("chunks do not concatenate to the input")
	}
	for i, c := range want {
		if len(c) > diskParams.Max || (len(c) < diskParams.Min && i != len(want)-1) {
			t.Errorf("chunk %d has length %d outside [%d, %d]", i, len(c), diskParams.Min, diskParams.Max)
		}
	}
	for _, step := range []int{1 << 20, 4096, 65537, 333} {
		var pieces [][]byte
		for off := 0; off < len(data); off += step {
			pieces = append(pieces, data[off:min(off+step, len(data))])
		}
		got := split(t, s, pieces...)
		if fmt.Sprint(lengths(got)) != fmt.Sprint(lengths(want)) {
			t.Errorf("step %d: lengths %v, want %v", step, lengths(got), lengths(want))
		}
	}
}

func TestSplitterMaxSize(t *testing.T) {
	// With 30 mask bits random data practically never matches: every cut
	// is at Max.
	p := Params{Min: 4096, Max: 10000, AvgBits: 30}
	s, err := NewSplitter(testPol, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := lengths(split(t, s, testData(35000, 9)))
	if fmt.Sprint(got) != "[10000 10000 10000 5000]" {
		t.Errorf("lengths %v", got)
	}
	// The fingerprint of zeros is zero, which matches the mask: zeros are
	// cut at Min.
	p.AvgBits = 12
	if s, err = NewSplitter(testPol, p, nil); err != nil {
		t.Fatal(err)
	}
	got = lengths(split(t, s, make([]byte, 10000)))
	if fmt.Sprint(got) != "[4096 4096 1808]" {
		t.Errorf("zeros: lengths %v", got)
	}
}

func TestSplitterResetAfterFlush(t *testing.T) {
	data := testData(3<<20, 3)
	s, err := NewSplitter(testPol, diskParams, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := lengths(split(t, s, data))
	s.Write(data[:100000], func(b *Buffer) error { b.Release(); return nil })
	s.Reset()
	b := lengths(split(t, s, data))
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("after Reset: %v, want %v", b, a)
	}
}

func TestParamsAndPolynomial(t *testing.T) {
	for _, p := range []Params{{Min: 10, Max: 100, AvgBits: 4}, {Min: 100, Max: 99, AvgBits: 4}, {Min: 100, Max: 200, AvgBits: 0}, {Min: 100, Max: 200, AvgBits: 31}} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if err := fileParams.Validate(); err != nil {
		t.Error(err)
	}
	if err := CheckPolynomial(testPol); err != nil {
		t.Error(err)
	}
	if err := CheckPolynomial(testPol ^ 1); err == nil {
		t.Error("reducible polynomial accepted")
	}
	if _, err := NewSplitter(0x1234, diskParams, nil); err == nil {
		t.Error("NewSplitter accepted a bad polynomial")
	}
	pol, err := RandomPolynomial()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPolynomial(pol); err != nil {
		t.Error(err)
	}
}

func TestSplitterNoAllocs(t *testing.T) {
	data := testData(4<<20, 4)
	s, err := NewSplitter(testPol, diskParams, NewPool(4, diskParams.Max))
	if err != nil {
		t.Fatal(err)
	}
	emit := func(b *Buffer) error { b.Release(); return nil }
	run := func() {
		s.Write(data, emit)
		s.Flush(emit)
	}
	run()
	if n := testing.AllocsPerRun(5, run); n > 0 {
		t.Errorf("%v allocations per 4 MiB", n)
	}
}

func benchSplit(b *testing.B, p Params, hash bool) {
	data := testData(64<<20, 5)
	s, err := NewSplitter(testPol, p, NewPool(4, p.Max))
	if err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	h, _ := blake3.NewKeyed(key)
	var sum [32]byte
	emit := func(c *Buffer) error {
		if hash {
			h.Reset()
			h.Write(c.Data)
			h.Sum(sum[:0])
		}
		c.Release()
		return nil
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		for off := 0; off < len(data); off += 1 << 20 {
			s.Write(data[off:off+1<<20], emit)
		}
		s.Flush(emit)
	}
}

func BenchmarkSplitDisk(b *testing.B)          { benchSplit(b, diskParams, false) }
func BenchmarkSplitFile(b *testing.B)          { benchSplit(b, fileParams, false) }
func BenchmarkSplitDiskKeyedHash(b *testing.B) { benchSplit(b, diskParams, true) }

func BenchmarkBLAKE3Zeros(b *testing.B) {
	h := blake3.New()
	z := Zeros(256 << 10)
	b.SetBytes(int64(len(z)))
	for range b.N {
		h.Write(z)
	}
}
