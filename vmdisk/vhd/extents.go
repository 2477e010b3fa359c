package vhd

import "github.com/bunkerbackup/bunker/vmdisk"

// appendExtent appends [off, off+n) to list, merging it with the last
// extent when they touch. Extents must be appended in ascending order.
func appendExtent(list []vmdisk.Extent, off, n int64) []vmdisk.Extent {
	if n <= 0 {
		return list
	}
	if k := len(list); k > 0 && list[k-1].End() >= off {
		if end := off + n; end > list[k-1].End() {
			list[k-1].Length = end - list[k-1].Offset
		}
		return list
	}
	return append(list, vmdisk.Extent{Offset: off, Length: n})
}

// intersect returns the ranges present in both sorted, non-overlapping lists.
func intersect(a, b []vmdisk.Extent) []vmdisk.Extent {
	var out []vmdisk.Extent
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo := max(a[i].Offset, b[j].Offset)
		hi := min(a[i].End(), b[j].End())
		out = appendExtent(out, lo, hi-lo)
		if a[i].End() < b[j].End() {
			i++
		} else {
			j++
		}
	}
	return out
}

// union merges two sorted, non-overlapping lists into one coalesced list.
func union(a, b []vmdisk.Extent) []vmdisk.Extent {
	out := make([]vmdisk.Extent, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j >= len(b) || (i < len(a) && a[i].Offset <= b[j].Offset) {
			out = appendExtent(out, a[i].Offset, a[i].Length)
			i++
		} else {
			out = appendExtent(out, b[j].Offset, b[j].Length)
			j++
		}
	}
	return out
}

// clip limits a sorted list to [0, size).
func clip(list []vmdisk.Extent, size int64) []vmdisk.Extent {
	return intersect(list, []vmdisk.Extent{{Offset: 0, Length: size}})
}
