package vhdx

import (
	"bytes"
	"testing"
)

func TestReplayLogSequences(t *testing.T) {
	g := guid{7}
	sec := func(c byte) []byte { return bytes.Repeat([]byte{c}, logSector) }
	const L = 64 << 10
	t.Run("two entries, later wins", func(t *testing.T) {
		log := make([]byte, L)
		e1 := logEntrySpec{seq: 10, tail: 0, guid: g, flushed: 1 << 20, last: 3 << 20,
			writes: []logWrite{{fileOff: 1 << 20, data: sec('a')}, {fileOff: 1<<20 + 4096, data: sec('b')}}}.build()
		e2 := logEntrySpec{seq: 11, tail: 0, guid: g, flushed: 1 << 20, last: 3 << 20,
			writes: []logWrite{{fileOff: 1 << 20, zeroLen: 4096}, {fileOff: 1<<20 + 4096, data: sec('c')}}}.build()
		copy(log, e1)
		copy(log[len(e1):], e2)
		ov, err := replayLog(log, g, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if ov.entries != 2 || ov.minSize != 3<<20 {
			t.Fatalf("entries %d, minSize %d", ov.entries, ov.minSize)
		}
		v := &fileView{r: bytes.NewReader(bytes.Repeat([]byte{'f'}, 1<<20)), phys: 1 << 20, size: 3 << 20, ov: ov}
		got := make([]byte, 3*4096)
		if _, err := v.ReadAt(got, 1<<20-4096); err != nil {
			t.Fatal(err)
		}
		want := append(append(sec('f'), make([]byte, 4096)...), sec('c')...)
		if !bytes.Equal(got, want) {
			t.Fatal("replayed view differs")
		}
	})
	t.Run("entry wrapping around the end", func(t *testing.T) {
		log := make([]byte, L)
		e := logEntrySpec{seq: 3, tail: L - 4096, guid: g, flushed: 1 << 20, last: 1 << 20,
			writes: []logWrite{{fileOff: 8192, data: sec('w')}}}.build()
		copy(log[L-4096:], e[:4096])
		copy(log, e[4096:])
		ov, err := replayLog(log, g, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ov.data[8192], sec('w')) {
			t.Fatal("wrapped entry not replayed")
		}
	})
	t.Run("tail outside the sequence", func(t *testing.T) {
		log := make([]byte, L)
		copy(log[8192:], logEntrySpec{seq: 3, tail: 0, guid: g, flushed: 1 << 20, last: 1 << 20}.build())
		if _, err := replayLog(log, g, 1<<20); err == nil {
			t.Fatal("incomplete sequence accepted")
		}
	})
	t.Run("other log GUID", func(t *testing.T) {
		log := make([]byte, L)
		copy(log, logEntrySpec{seq: 3, tail: 0, guid: guid{8}, flushed: 1 << 20, last: 1 << 20}.build())
		if _, err := replayLog(log, g, 1<<20); err == nil {
			t.Fatal("entry of another log accepted")
		}
	})
	t.Run("torn data sector", func(t *testing.T) {
		log := make([]byte, L)
		e := logEntrySpec{seq: 3, tail: 0, guid: g, flushed: 1 << 20, last: 1 << 20,
			writes: []logWrite{{fileOff: 8192, data: sec('w')}}}.build()
		le.PutUint32(e[4096+4092:], 2) // SequenceLow from another entry
		le.PutUint32(e[4:], crc32c(e, 4))
		copy(log, e)
		if _, err := replayLog(log, g, 1<<20); err == nil {
			t.Fatal("torn entry accepted")
		}
	})
}
