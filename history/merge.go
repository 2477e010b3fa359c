package history

import (
	"fmt"
	"sort"
)

// Merge combines records read from several places (the local file, the
// repository's history files) into one list, oldest first by start, with
// one record per id: the first one seen wins, so pass the most complete
// source first. Records without an id (written before ids existed) are all
// kept. Records with equal starts keep their input order.
func Merge(lists ...[]Record) []Record {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]Record, 0, n)
	seen := make(map[string]bool, n)
	for _, l := range lists {
		for _, r := range l {
			if r.ID != "" {
				if seen[r.ID] {
					continue
				}
				seen[r.ID] = true
			}
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// ParseRecords decodes records stored as JSON objects (the line format
// without the newline), as the repository keeps them. Records that do not
// parse are counted in Bad and skipped; a record of a newer bunker that
// has fields this one does not know parses with those fields ignored.
func ParseRecords[T ~[]byte](raw []T) ReadResult {
	var res ReadResult
	for i, b := range raw {
		r, err := ParseLine(b)
		if err != nil {
			res.Bad++
			if res.FirstBad == "" {
				res.FirstBad = fmt.Sprintf("record %d: %v", i+1, err)
			}
			continue
		}
		res.Records = append(res.Records, r)
	}
	return res
}
