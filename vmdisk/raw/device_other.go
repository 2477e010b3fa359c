//go:build !linux && !darwin

package raw

import (
	"errors"
	"os"
)

// errNoDevices is returned for block devices on systems where bunker reads
// and writes image files only.
var errNoDevices = errors.New("block devices are supported on Linux and macOS; back up or restore to an image file instead")

func openDevice(path string, flag int) (*os.File, error) { return nil, errNoDevices }

func deviceGeometry(f *os.File) (int64, int, error) { return 0, 0, errNoDevices }

func zeroOut(f *os.File, off, n int64) error { return errors.ErrUnsupported }

func syncDevice(f *os.File) error { return f.Sync() }

func rereadPartitions(f *os.File) {}
