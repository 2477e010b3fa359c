package repo

import (
	"encoding/json"
	"testing"
	"time"
)

func FuzzProtection(f *testing.F) {
	p := &Protection{Snapshot: ID{3}, Time: time.Unix(1700000000, 0).UTC(), Until: time.Unix(1800000000, 0).UTC(), Hostname: "h", Note: "legal hold"}
	b, err := json.Marshal(protectionJSON{Version: FormatVersion, Protection: p})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"snapshot":"0300000000000000000000000000000000000000000000000000000000000000","time":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"version":2,"snapshot":"03"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeProtection(b)
		if err != nil {
			return
		}
		enc, err := json.Marshal(protectionJSON{Version: FormatVersion, Protection: p})
		if err != nil {
			t.Fatal(err)
		}
		p2, err := decodeProtection(enc)
		if err != nil || p2.Snapshot != p.Snapshot || !p2.Until.Equal(p.Until) {
			t.Fatalf("protection round trip: %+v -> %+v, %v", p, p2, err)
		}
	})
}

func FuzzMinRetention(f *testing.F) {
	for _, s := range []string{"30d", "1y2m3w4d5h", "", "3x", "1d1d", "12345678d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validRetentionPeriod(s) != nil {
			return
		}
		c := Config{Version: 1, ID: "0000000000000000000000000000000000000000000000000000000000000000", ChunkerPolynomial: 0x3DA3358B4DC173,
			FileChunker: DefaultFileChunker, DiskChunker: DefaultDiskChunker, Compression: "auto", MinRetention: s}
		enc, _ := json.Marshal(c)
		if c2, err := parseConfig(enc); err != nil || c2 != c {
			t.Fatalf("config with min retention %q: %v", s, err)
		}
	})
}
