package fsread

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bunkerbackup/bunker/vmdisk/part"
)

// ErrNoPartition is returned by OpenPartition for a partition number the
// disk does not have.
var ErrNoPartition = errors.New("no such partition")

// OpenPartition opens the file system of partition number n (numbered as
// Linux does: GPT entry index + 1, MBR 1-4 and logical partitions from 5)
// of the disk r of size bytes with sectorSize-byte logical sectors (0:
// unknown). n == 0 opens a disk without a partition table as one file
// system. It returns the partition too (for a whole disk, one spanning
// it).
func OpenPartition(r io.ReaderAt, size int64, sectorSize, n int) (*FS, part.Partition, error) {
	table, err := part.Read(r, size, sectorSize)
	if err != nil {
		return nil, part.Partition{}, fmt.Errorf("read partition table: %w", err)
	}
	var p part.Partition
	switch {
	case n == 0 && table.Type == "none":
		typ, label, uuid := part.DetectFilesystem(r, size)
		p = part.Partition{Size: size, Filesystem: typ, Label: label, UUID: uuid}
	case n == 0:
		return nil, p, fmt.Errorf("disk has a %s partition table: choose a partition (%s): %w",
			table.Type, partitionList(table), ErrNoPartition)
	default:
		found := false
		for _, q := range table.Partitions {
			if q.Number == n {
				p, found = q, true
			}
		}
		if !found {
			return nil, p, fmt.Errorf("partition %d (disk has %s): %w", n, partitionList(table), ErrNoPartition)
		}
	}
	if p.Extended {
		return nil, p, fmt.Errorf("partition %d is an extended partition (a container of logical partitions): %w", n, ErrUnsupported)
	}
	fsys, err := Open(p.Section(r), p.Size, p.Filesystem)
	if err != nil {
		return nil, p, fmt.Errorf("partition %d: %w", n, err)
	}
	return fsys, p, nil
}

// partitionList names a table's partitions: "1 (vfat), 2 (ext4)".
func partitionList(t *part.Table) string {
	if len(t.Partitions) == 0 {
		return "no partitions"
	}
	var b strings.Builder
	for i, p := range t.Partitions {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d (%s)", p.Number, cmp.Or(p.Filesystem, "extended"))
	}
	return b.String()
}
