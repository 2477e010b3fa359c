//go:build !unix

package vhd

import "errors"

// errNXIO never matches on systems without SEEK_DATA; Extents then reports
// the whole disk of a fixed VHD as allocated.
var errNXIO = errors.New("no SEEK_DATA")
