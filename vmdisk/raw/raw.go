// Package raw reads and writes raw disk images and Linux block devices.
//
// A raw image is the guest-visible disk byte for byte. Its allocated
// extents come from the file system's hole map (lseek SEEK_DATA/SEEK_HOLE);
// where the file system cannot tell, the whole file counts as allocated. A
// block device has no hole map: all of it is allocated, its size comes from
// BLKGETSIZE64 and its logical sector size from BLKSSZGET.
//
// Two formats are registered: "raw" (accepts any file, probed last) and
// "device". Opening a block device as "raw" yields a "device" image.
//
// Writers: [Create] makes a sparse raw file (only non-zero data is written);
// [OpenDevice] writes a block device, opened exclusively, writing zeros
// wherever the disk is zero unless the device is known to be zeroed.
package raw

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/lockcheck"
)

func init() {
	vmdisk.Register(vmdisk.Format{
		Name:     "raw",
		Probe:    func(head, tail []byte, size int64) bool { return true },
		Open:     Open,
		Create:   Create,
		Priority: 1000,
	})
	vmdisk.Register(vmdisk.Format{
		Name: "device",
		// A device is recognised by its file mode, not its content: the
		// raw format's Open turns a block device into a device image.
		Probe:    func(head, tail []byte, size int64) bool { return false },
		Open:     OpenBlockDevice,
		Create:   createDevice,
		Priority: 999,
	})
}

// Image is an open raw file or block device.
type Image struct {
	f          *os.File
	path       string
	size       int64
	sectorSize int
	device     bool
	info       vmdisk.Info
}

// IsBlockDevice reports whether path names a block device (following
// symlinks, so /dev/disk/by-id/... works).
func IsBlockDevice(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return isDevice(fi), nil
}

func isDevice(fi os.FileInfo) bool {
	return fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
}

// Open opens a raw image file, or a block device when path is one.
func Open(path string, opts vmdisk.OpenOptions) (vmdisk.Image, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if isDevice(fi) {
		return OpenBlockDevice(path, opts)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: not a regular file or block device", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	im := &Image{f: f, path: path, size: size, sectorSize: 512,
		info: vmdisk.Info{Format: "raw", Files: []string{path}}}
	if err := lockcheck.Mark(f, path, opts.Force, &im.info); err != nil {
		f.Close()
		return nil, err
	}
	return im, nil
}

// OpenBlockDevice opens a block device read-only. A device that is mounted
// or held exclusively by another user (EBUSY on an O_EXCL open) is reported
// as in use.
func OpenBlockDevice(path string, opts vmdisk.OpenOptions) (vmdisk.Image, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !isDevice(fi) {
		return nil, fmt.Errorf("open %s: not a block device", path)
	}
	var reasons []string
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_EXCL, 0)
	if errors.Is(err, unix.EBUSY) {
		reason := "device is mounted or in use"
		if !opts.Force {
			return nil, fmt.Errorf("open %s: %s: %w", path, reason, vmdisk.ErrInUse)
		}
		reasons = append(reasons, path+": "+reason)
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, err
	}
	size, ssz, err := deviceGeometry(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Image{f: f, path: path, size: size, sectorSize: ssz, device: true,
		info: vmdisk.Info{Format: "device", Files: []string{path}, InUse: len(reasons) > 0, Reasons: reasons}}, nil
}

// deviceGeometry returns a block device's size and logical sector size.
func deviceGeometry(f *os.File) (int64, int, error) {
	fd := int(f.Fd())
	size, err := unix.IoctlGetInt(fd, unix.BLKGETSIZE64)
	if err != nil || size <= 0 {
		end, serr := f.Seek(0, io.SeekEnd)
		if serr != nil {
			return 0, 0, fmt.Errorf("get device size: %w", errors.Join(err, serr))
		}
		size = int(end)
	}
	ssz, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil || ssz < 512 || ssz&(ssz-1) != 0 {
		ssz = 512
	}
	return int64(size), ssz, nil
}

// Size returns the image size in bytes.
func (im *Image) Size() int64 { return im.size }

// SectorSize returns the logical sector size: BLKSSZGET for devices, 512
// for files.
func (im *Image) SectorSize() int { return im.sectorSize }

// Info describes the image.
func (im *Image) Info() vmdisk.Info { return im.info }

// Close closes the file or device.
func (im *Image) Close() error { return im.f.Close() }

// ReadAt reads guest bytes; it returns io.EOF at or beyond Size.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", im.path, off)
	}
	if off >= im.size {
		return 0, io.EOF
	}
	short := false
	if int64(len(p)) > im.size-off {
		p = p[:im.size-off]
		short = true
	}
	n, err := im.f.ReadAt(p, off)
	if err == io.EOF && n < len(p) {
		// The file shrank under us: that is an error, not a short disk.
		return n, fmt.Errorf("read %s at %d: %w", im.path, off+int64(n), io.ErrUnexpectedEOF)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read %s: %w", im.path, err)
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

// Extents returns the allocated ranges: the file's data ranges found with
// SEEK_DATA/SEEK_HOLE, or the whole image for devices and file systems
// without hole reporting.
func (im *Image) Extents() ([]vmdisk.Extent, error) {
	if im.size == 0 {
		return nil, nil
	}
	if im.device {
		return []vmdisk.Extent{{Offset: 0, Length: im.size}}, nil
	}
	return DataExtents(im.f, 0, im.size)
}

// DataExtents returns the data ranges of the regular file f within
// [start, end), found with SEEK_DATA/SEEK_HOLE and coalesced. When the file
// system does not support hole reporting, the whole range is returned.
// SEEK_DATA/SEEK_HOLE take absolute offsets, so concurrent calls and
// concurrent ReadAt calls on f are safe; f's file offset is changed.
func DataExtents(f *os.File, start, end int64) ([]vmdisk.Extent, error) {
	var out []vmdisk.Extent
	fd := int(f.Fd())
	off := start
	for off < end {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // no data after off
		}
		if err == unix.EINVAL || err == unix.EOPNOTSUPP {
			return []vmdisk.Extent{{Offset: start, Length: end - start}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("find data in %s: %w", f.Name(), err)
		}
		if data >= end {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("find hole in %s: %w", f.Name(), err)
		}
		if hole > end || hole <= data {
			hole = end
		}
		if n := len(out); n > 0 && out[n-1].End() == data {
			out[n-1].Length = hole - out[n-1].Offset
		} else {
			out = append(out, vmdisk.Extent{Offset: data, Length: hole - data})
		}
		off = hole
	}
	return out, nil
}
