// Package extents does set arithmetic on sorted lists of disk ranges
// ([vmdisk.Extent]), for image formats whose Extents combine the ranges a
// file holds itself with those its parent (backing file) supplies.
//
// Every list the package takes and returns is sorted by offset and holds
// no overlapping ranges; the lists it returns are also coalesced (no two
// ranges touch) and hold no empty ranges.
package extents

import "github.com/bunkerbackup/bunker/vmdisk"

// Append appends [off, off+n) to list, merging it with the last extent
// when they touch or overlap. Ranges must be appended in ascending order
// of offset; an empty range (n <= 0) is ignored.
func Append(list []vmdisk.Extent, off, n int64) []vmdisk.Extent {
	if n <= 0 {
		return list
	}
	if k := len(list); k > 0 && list[k-1].End() >= off {
		list[k-1].Length = max(list[k-1].End(), off+n) - list[k-1].Offset
		return list
	}
	return append(list, vmdisk.Extent{Offset: off, Length: n})
}

// Intersect returns the ranges present in both lists.
func Intersect(a, b []vmdisk.Extent) []vmdisk.Extent {
	var out []vmdisk.Extent
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo := max(a[i].Offset, b[j].Offset)
		hi := min(a[i].End(), b[j].End())
		out = Append(out, lo, hi-lo)
		if a[i].End() < b[j].End() {
			i++
		} else {
			j++
		}
	}
	return out
}

// Union returns the ranges present in either list, as a new list.
func Union(a, b []vmdisk.Extent) []vmdisk.Extent {
	out := make([]vmdisk.Extent, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j >= len(b) || (i < len(a) && a[i].Offset <= b[j].Offset) {
			out = Append(out, a[i].Offset, a[i].Length)
			i++
		} else {
			out = Append(out, b[j].Offset, b[j].Length)
			j++
		}
	}
	return out
}

// Clip limits list to [0, size).
func Clip(list []vmdisk.Extent, size int64) []vmdisk.Extent {
	return Intersect(list, []vmdisk.Extent{{Offset: 0, Length: size}})
}
