package raw

import (
	"errors"
	"fmt"
	"os"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/zeros"
)

// zeroGrain is the granularity at which writers look for zero data.
const zeroGrain = 4096

// FileWriter writes a sparse raw image file.
type FileWriter struct {
	f    *os.File
	path string
	size int64
}

// Create makes a sparse raw image of size bytes at path, replacing any
// existing file. Only non-zero data is written; zero ranges stay holes.
// The only variant is "" (or "sparse"). When path is a block device,
// Create returns the device writer of [OpenDevice] instead (zeros written).
func Create(path string, size int64, variant string) (vmdisk.Writer, error) {
	if variant != "" && variant != "sparse" {
		return nil, fmt.Errorf("create %s: unknown raw variant %q", path, variant)
	}
	if size < 0 {
		return nil, fmt.Errorf("create %s: negative size %d", path, size)
	}
	if err := devicePathError(path); err != nil {
		return nil, err
	}
	if dev, err := IsBlockDevice(path); err == nil && dev {
		return OpenDevice(path, size, false)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &FileWriter{f: f, path: path, size: size}, nil
}

// Size returns the image size.
func (w *FileWriter) Size() int64 { return w.size }

// WriteAt writes the non-zero parts of p at off. Writes may come in any
// order.
func (w *FileWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.size-int64(len(p)) {
		return 0, fmt.Errorf("write %s: range %d+%d outside the %d-byte disk", w.path, off, len(p), w.size)
	}
	if err := writeNonZero(w.f, p, off); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.path, err)
	}
	return len(p), nil
}

// Close syncs and closes the file.
func (w *FileWriter) Close() error {
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	return nil
}

// writeNonZero writes the runs of p that are not all zero, judged in
// zeroGrain blocks aligned to the absolute offset.
func writeNonZero(f *os.File, p []byte, off int64) error {
	runStart := -1
	for i := 0; i < len(p); {
		n := zeroGrain - int((off+int64(i))%zeroGrain)
		n = min(n, len(p)-i)
		if zeros.Is(p[i : i+n]) {
			if runStart >= 0 {
				if _, err := f.WriteAt(p[runStart:i], off+int64(runStart)); err != nil {
					return err
				}
				runStart = -1
			}
		} else if runStart < 0 {
			runStart = i
		}
		i += n
	}
	if runStart >= 0 {
		if _, err := f.WriteAt(p[runStart:], off+int64(runStart)); err != nil {
			return err
		}
	}
	return nil
}

// DeviceWriter writes a disk onto a block device.
type DeviceWriter struct {
	f            *os.File
	path         string
	size         int64
	assumeZeroed bool
	next         int64 // first byte not yet written or zeroed
	closed       bool
}

// ErrDeviceBusy is wrapped when a block device is mounted or held by
// another process.
var ErrDeviceBusy = errors.New("device is mounted or in use")

// OpenDevice opens the block device at path exclusively for writing a disk
// of size bytes. A mounted or otherwise held device is refused (the error
// wraps [ErrDeviceBusy] and [vmdisk.ErrInUse]), and so is a device smaller
// than size. Writes must come in ascending order; every byte of [0, size)
// not written is zeroed unless assumeZeroed says the device already reads
// as zeros (then zero data is skipped too). Close syncs the device and, on
// Linux, asks the kernel to re-read its partition table.
func OpenDevice(path string, size int64, assumeZeroed bool) (*DeviceWriter, error) {
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
	f, err := openDevice(path, os.O_WRONLY)
	if errors.Is(err, ErrDeviceBusy) {
		return nil, fmt.Errorf("open %s: %w (%w)", path, err, vmdisk.ErrInUse)
	}
	if err != nil {
		return nil, err
	}
	devSize, _, err := deviceGeometry(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if devSize < size {
		f.Close()
		return nil, fmt.Errorf("open %s: device holds %d bytes, smaller than the %d-byte disk", path, devSize, size)
	}
	return &DeviceWriter{f: f, path: path, size: size, assumeZeroed: assumeZeroed}, nil
}

// Size returns the disk size being written (not the device size).
func (w *DeviceWriter) Size() int64 { return w.size }

// WriteAt writes p at off, zeroing the gap since the previous write.
func (w *DeviceWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.size-int64(len(p)) {
		return 0, fmt.Errorf("write %s: range %d+%d outside the %d-byte disk", w.path, off, len(p), w.size)
	}
	if off < w.next {
		return 0, fmt.Errorf("write %s: offset %d before %d: writes must ascend", w.path, off, w.next)
	}
	if !w.assumeZeroed {
		if err := w.zero(w.next, off); err != nil {
			return 0, err
		}
		if _, err := w.f.WriteAt(p, off); err != nil {
			return 0, fmt.Errorf("write %s: %w", w.path, err)
		}
	} else if err := writeNonZero(w.f, p, off); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.path, err)
	}
	w.next = off + int64(len(p))
	return len(p), nil
}

// zero writes zeros over [start, end): the system's zero-out request
// (BLKZEROOUT on Linux) for the sector-aligned middle when the device
// supports it, plain writes otherwise.
func (w *DeviceWriter) zero(start, end int64) error {
	if start >= end {
		return nil
	}
	as, ae := (start+511)&^511, end&^511
	if ae-as >= 1<<20 && zeroOut(w.f, as, ae-as) == nil {
		if err := w.writeZeros(start, as); err != nil {
			return err
		}
		return w.writeZeros(ae, end)
	}
	return w.writeZeros(start, end)
}

func (w *DeviceWriter) writeZeros(start, end int64) error {
	buf := make([]byte, min(end-start, 1<<20))
	for off := start; off < end; {
		n := min(int64(len(buf)), end-off)
		if _, err := w.f.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("zero %s at %d: %w", w.path, off, err)
		}
		off += n
	}
	return nil
}

// Close zeroes the rest of the disk (unless assumeZeroed), syncs the
// device and, on Linux, asks the kernel to re-read its partition table (a
// failure of that last step is ignored: not every device has partitions).
func (w *DeviceWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if !w.assumeZeroed {
		err = w.zero(w.next, w.size)
	}
	if err == nil {
		if err = syncDevice(w.f); err != nil {
			err = fmt.Errorf("sync %s: %w", w.path, err)
		}
	}
	if err == nil {
		rereadPartitions(w.f)
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", w.path, cerr)
	}
	return err
}

func createDevice(path string, size int64, variant string) (vmdisk.Writer, error) {
	switch variant {
	case "":
		return OpenDevice(path, size, false)
	case "assume-zeroed":
		return OpenDevice(path, size, true)
	}
	return nil, fmt.Errorf("create %s: unknown device variant %q (want \"\" or \"assume-zeroed\")", path, variant)
}
