package repo

import (
	"encoding/json"
	"testing"
)

func FuzzDecodeHistory(f *testing.F) {
	good, err := encodeHistory([]json.RawMessage{
		json.RawMessage(`{"id":"5f0c9d2e8b7a61430f1e2d3c4b5a6978","kind":"backup","start":"2026-11-20T02:00:00Z","status":"success"}`),
		json.RawMessage(`{"id":"x","anything":[1,2,{"deep":null}]}`),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":2,"records":[{"id":"a"}]}`))
	f.Add([]byte(`{"version":1,"records":[]}`))
	f.Add([]byte(`{"version":1,"records":[{"id":"a"},"b"]}`))
	f.Add([]byte(`{"version":1,"records":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := decodeHistory(data)
		if err != nil {
			if recs != nil {
				t.Fatal("error with a partial result")
			}
			return
		}
		// What decodes encodes again and decodes to the same records.
		out, err := encodeHistory(recs)
		if err != nil {
			t.Fatalf("decoded records do not encode: %v", err)
		}
		recs2, err := decodeHistory(out)
		if err != nil || len(recs2) != len(recs) {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		for i := range recs {
			a, _ := HistoryRecordID(recs[i])
			b, _ := HistoryRecordID(recs2[i])
			if a != b {
				t.Fatalf("record %d: id %q became %q", i, a, b)
			}
		}
	})
}
