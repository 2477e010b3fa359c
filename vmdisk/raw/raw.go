// Package raw reads and writes raw disk images and block devices.
//
// A raw image is the guest-visible disk byte for byte. Its allocated
// extents come from the file system's hole map (lseek SEEK_DATA/SEEK_HOLE
// on Linux and macOS); where the file system or the system cannot tell, the
// whole file counts as allocated and the chunker's zero detection still
// records the zero runs as holes. A block device has no hole map: all of it
// is allocated. Its size and logical sector size come from BLKGETSIZE64 and
// BLKSSZGET on Linux and from DKIOCGETBLOCKCOUNT and DKIOCGETBLOCKSIZE on
// macOS. Other systems read and write image files only; on Windows a device
// path (\\.\PhysicalDrive0, \\.\C:) is refused with an error saying so.
//
// Two formats are registered: "raw" (accepts any file, probed last) and
// "device". Opening a block device as "raw" yields a "device" image.
//
// Writers: [Create] makes a sparse raw file (only non-zero data is written);
// [OpenDevice] writes a block device, opened exclusively, writing zeros
// wherever the disk is zero unless the device is known to be zeroed.
//
// A device counts as in use when another holder has it open exclusively
// (Linux: an O_EXCL open fails with EBUSY, as it does for a mounted file
// system on the disk or one of its partitions) or, on macOS, when a file
// system on it or on one of its slices is mounted.
package raw

import (
	"errors"
	"fmt"
	"io"
	"os"

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
	if err := devicePathError(path); err != nil {
		return false, err
	}
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
	if err := devicePathError(path); err != nil {
		return nil, err
	}
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
// or held exclusively by another user is reported as in use.
func OpenBlockDevice(path string, opts vmdisk.OpenOptions) (vmdisk.Image, error) {
	if err := devicePathError(path); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !isDevice(fi) {
		return nil, fmt.Errorf("open %s: not a block device", path)
	}
	var reasons []string
	f, err := openDevice(path, os.O_RDONLY)
	if errors.Is(err, ErrDeviceBusy) {
		// A source in use is vmdisk.ErrInUse only: ErrDeviceBusy is
		// about restore targets.
		reason := err.Error()
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

// validSectorSize reports whether a logical sector size from the system is
// plausible: a power of two of at least 512 bytes.
func validSectorSize(n int) bool { return n >= 512 && n <= 1<<16 && n&(n-1) == 0 }

// Size returns the image size in bytes.
func (im *Image) Size() int64 { return im.size }

// SectorSize returns the logical sector size: the system's for devices,
// 512 for files.
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
// SEEK_DATA/SEEK_HOLE, or the whole image for devices and for systems and
// file systems without hole reporting.
func (im *Image) Extents() ([]vmdisk.Extent, error) {
	if im.size == 0 {
		return nil, nil
	}
	if im.device {
		return []vmdisk.Extent{{Offset: 0, Length: im.size}}, nil
	}
	return DataExtents(im.f, 0, im.size)
}
