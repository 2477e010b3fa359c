package extents

import (
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

type ext = vmdisk.Extent

func TestAppend(t *testing.T) {
	var l []ext
	l = Append(l, 0, 10)
	l = Append(l, 10, 5)  // touches: merged
	l = Append(l, 12, 2)  // inside: no change
	l = Append(l, 20, 0)  // empty: ignored
	l = Append(l, 20, 5)  // gap: new extent
	l = Append(l, 22, 10) // overlaps: extended
	if want := []ext{{Offset: 0, Length: 15}, {Offset: 20, Length: 12}}; !slices.Equal(l, want) {
		t.Fatalf("got %v, want %v", l, want)
	}
}

func TestSetOperations(t *testing.T) {
	a := []ext{{Offset: 0, Length: 10}, {Offset: 20, Length: 10}, {Offset: 40, Length: 100}}
	b := []ext{{Offset: 5, Length: 20}, {Offset: 30, Length: 15}, {Offset: 100, Length: 10}}
	for _, c := range []struct {
		name      string
		got, want []ext
	}{
		{"intersect", Intersect(a, b), []ext{{Offset: 5, Length: 5}, {Offset: 20, Length: 5}, {Offset: 40, Length: 5}, {Offset: 100, Length: 10}}},
		// [0,10) and [5,25) overlap, [20,30) touches [30,45), which overlaps [40,140).
		{"union", Union(a, b), []ext{{Offset: 0, Length: 140}}},
		{"union disjoint", Union([]ext{{Offset: 0, Length: 1}}, []ext{{Offset: 2, Length: 1}}), []ext{{Offset: 0, Length: 1}, {Offset: 2, Length: 1}}},
		{"union empty", Union(nil, b), b},
		{"clip", Clip(a, 25), []ext{{Offset: 0, Length: 10}, {Offset: 20, Length: 5}}},
		{"clip none", Clip(a, 0), nil},
		// Adjacent pieces of the result coalesce.
		{"intersect coalesces", Intersect([]ext{{Offset: 0, Length: 5}, {Offset: 5, Length: 5}}, []ext{{Offset: 0, Length: 10}}), []ext{{Offset: 0, Length: 10}}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}
