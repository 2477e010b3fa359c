// Package vmdisk reads and writes virtual machine disks by their
// guest-visible content.
//
// A disk image is a container (VMDK, VHD, VHDX, qcow2, a raw file or a block
// device) around the bytes the guest sees. bunker backs up and deduplicates
// those guest bytes, never the container, so the same disk stored as raw,
// VMDK or VHD yields the same chunks.
//
// Every format implements [Image]: the virtual size, the logical sector size,
// the allocated extents, and an [io.ReaderAt] over the guest bytes in which
// unallocated ranges read as zeros without touching storage. Formats live in
// sub-packages (vmdisk/raw, vmdisk/vmdk, vmdisk/vhd, vmdisk/vhdx,
// vmdisk/qcow2) and register themselves with [Register]; importing
// vmdisk/all registers every format, after which [Open] detects the format
// of a file by its content.
//
// Extents versus holes: Extents reports the ranges the container has
// allocated. An allocated range may still hold zeros (mkfs writes them);
// callers that care must check the bytes. An unallocated range is guaranteed
// to read as zeros.
//
// Restore targets implement [Writer].
package vmdisk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Extent is a range of a disk, in bytes.
type Extent struct {
	Offset int64
	Length int64
}

// End returns the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Image is a readable disk.
//
// ReadAt reads guest-visible bytes; ranges outside any extent read as zeros
// and are never read from storage. Concurrent ReadAt calls are safe. Reading
// at or beyond Size returns io.EOF like a file.
type Image interface {
	io.ReaderAt
	// Size is the virtual disk size in bytes.
	Size() int64
	// SectorSize is the logical sector size in bytes (512 or 4096).
	SectorSize() int
	// Extents returns the allocated ranges: sorted, non-overlapping,
	// coalesced, inside [0, Size).
	Extents() ([]Extent, error)
	// Format names the container format and variant, e.g. "vmdk" or
	// "vhd-dynamic"; Info gives details.
	Info() Info
	Close() error
}

// Info describes an opened image.
type Info struct {
	// Format is the registered format name: raw, device, vmdk, vhd, vhdx, qcow2.
	Format string
	// Variant is the sub-format, e.g. "monolithicSparse", "dynamic", "fixed".
	Variant string
	// Files are all files the image consists of (descriptor, extents,
	// parents in a chain), the first being the one opened.
	Files []string
	// InUse is set when the image is (or may be) open for writing by a
	// hypervisor: a dirty flag, an unclean-shutdown flag, a dirty log, or a
	// lock held by another process. Reasons explains each.
	InUse   bool
	Reasons []string
}

// OpenOptions tune how an image is opened.
type OpenOptions struct {
	// Force opens an image that is in use (see Info.InUse) instead of
	// returning ErrInUse. The caller must then treat the content as
	// crash-consistent at best.
	Force bool
	// Depth is the number of images already open above this one in a
	// backing chain; formats use it to refuse loops and over-long chains.
	Depth int
}

// MaxChainDepth bounds backing-file chains.
const MaxChainDepth = 64

// Errors returned by Open and the format readers.
var (
	// ErrUnsupported is wrapped by errors for valid images of a variant
	// bunker does not read (VMDK SESparse, encrypted qcow2, ...).
	ErrUnsupported = errors.New("unsupported disk image variant")
	// ErrInUse is wrapped when an image is open for writing elsewhere and
	// OpenOptions.Force is not set.
	ErrInUse = errors.New("disk image is in use")
	// ErrUnknownFormat is returned when no format recognises a file and
	// raw was not allowed.
	ErrUnknownFormat = errors.New("unknown disk image format")
)

// FormatError reports a malformed image: which file, which structure, at
// which offset, and what is wrong.
type FormatError struct {
	Format string // "vmdk", "vhd", ...
	Path   string // the file holding the structure
	Struct string // "sparse header", "grain table 3", "BAT", ...
	Offset int64  // byte offset of the structure in Path
	Msg    string
	Err    error // optional underlying error
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("%s: %s: %s at offset %d: %s", e.Path, e.Format, e.Struct, e.Offset, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }

// Format is a registered disk format.
type Format struct {
	// Name is the format's name as used by --format.
	Name string
	// Probe reports whether the file looks like this format. head holds up
	// to the first 64 KiB of the file, tail up to its last 64 KiB; size is
	// the file size. Probes must not be fooled by raw data that happens to
	// contain a magic further in.
	Probe func(head, tail []byte, size int64) bool
	// Open opens path as this format.
	Open func(path string, opts OpenOptions) (Image, error)
	// Create makes a new image of this format at path for writing (nil when
	// the format cannot be written). variant selects a sub-format, e.g.
	// "streamOptimized" or "fixed"; "" is the format's default.
	Create func(path string, size int64, variant string) (Writer, error)
	// Priority orders probes: lower first. Raw, which accepts anything,
	// has the highest.
	Priority int
}

var (
	formatsMu sync.RWMutex
	formats   []Format
)

// Register makes a format available to Open. It is called from the init
// function of each format package.
func Register(f Format) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	formats = append(formats, f)
	sort.SliceStable(formats, func(i, j int) bool { return formats[i].Priority < formats[j].Priority })
}

// Formats lists the registered format names in probe order.
func Formats() []string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.Name
	}
	return names
}

// Open opens the image at path. With format "" (or "auto") the format is
// detected from the file's content; otherwise the named format is used.
func Open(path string, format string, opts OpenOptions) (Image, error) {
	if opts.Depth > MaxChainDepth {
		return nil, fmt.Errorf("open %s: backing chain deeper than %d images (a loop?)", path, MaxChainDepth)
	}
	formatsMu.RLock()
	list := append([]Format(nil), formats...)
	formatsMu.RUnlock()
	if format != "" && format != "auto" {
		for _, f := range list {
			if f.Name == format {
				return f.Open(path, opts)
			}
		}
		return nil, fmt.Errorf("open %s: unknown format %q (known: %v)", path, format, Formats())
	}
	head, tail, size, err := sniff(path)
	if err != nil {
		return nil, err
	}
	for _, f := range list {
		if f.Probe(head, tail, size) {
			if want := formatByExtension(path); f.Name == "raw" && want != "" {
				// A damaged container must not be backed up as if it were
				// the disk: its bytes are not what the guest sees.
				return nil, fmt.Errorf("open %s: the name says %s, but the content is not a %s image (no valid signature): %w", path, want, want, ErrUnknownFormat)
			}
			return f.Open(path, opts)
		}
	}
	return nil, fmt.Errorf("open %s: %w", path, ErrUnknownFormat)
}

// formatByExtension returns the container format a file's name implies, or
// "" for names that imply none (raw images have no single extension).
func formatByExtension(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".qcow2", ".qcow":
		return "qcow2"
	case ".vmdk":
		return "vmdk"
	case ".vhd", ".vpc":
		return "vhd"
	case ".vhdx":
		return "vhdx"
	}
	return ""
}

const sniffSize = 64 << 10

func sniff(path string) (head, tail []byte, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, err
	}
	defer f.Close()
	size, err = f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	head = make([]byte, min(size, sniffSize))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	tail = make([]byte, min(size, sniffSize))
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil && err != io.EOF {
		return nil, nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return head, tail, size, nil
}

// Create makes a new image of the named format at path. It fails if the
// format cannot be written.
func Create(path, format string, size int64, variant string) (Writer, error) {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	for _, f := range formats {
		if f.Name == format {
			if f.Create == nil {
				return nil, fmt.Errorf("create %s: bunker cannot write %s images", path, format)
			}
			return f.Create(path, size, variant)
		}
	}
	return nil, fmt.Errorf("create %s: unknown format %q", path, format)
}

// Writer receives a disk's guest-visible content and stores it in a
// container (a sparse raw file, VMDK, VHD) or on a device.
//
// Callers write in ascending offset order without overlap (formats such as
// streamOptimized VMDK need it); ranges never written read as zeros in the
// result. Close finishes the container (tables, footers) and syncs it; a
// Writer that is not closed successfully leaves an unusable target.
type Writer interface {
	WriteAt(p []byte, off int64) (int, error)
	// Size is the virtual size the writer was created with.
	Size() int64
	Close() error
}
