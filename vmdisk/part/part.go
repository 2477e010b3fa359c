// Package part reads the partition table of a disk: GPT or MBR (with
// extended partitions), and names the filesystem found in each partition.
//
// Positions in a partition table are in logical sectors (LBAs) of the disk,
// 512 or 4096 bytes; the same table read with the wrong sector size is
// either not found (GPT, whose header sits at LBA 1) or points to the wrong
// places (MBR). Read takes the sector size when it is known and otherwise
// tries 512 and then 4096 bytes.
//
// GPT is preferred over MBR: a protective (type 0xEE) or hybrid MBR is
// only the GPT's cover. The GPT header and entry array are verified by
// their CRC32s; when the primary header (LBA 1) is damaged the backup at
// the last LBA is used and Table.Warnings says so.
//
// Filesystems are recognised by their superblock magic (DetectFilesystem):
// ext2/3/4, XFS, Btrfs, FAT12/16/32, exFAT, NTFS, Linux swap, LVM2 PV, LUKS
// and ISO 9660, with label and UUID where the superblock holds them.
package part

import (
	"errors"
	"fmt"
	"io"
)

// ErrInvalid is wrapped by errors for a partition table that is present
// but damaged (bad CRC, entries beyond the disk, EBR loops).
var ErrInvalid = errors.New("invalid partition table")

// Table is a disk's partition table.
type Table struct {
	// Type is "gpt", "mbr" or "none" (no partition table).
	Type string
	// SectorSize is the logical sector size the table was read with.
	SectorSize int
	// DiskGUID is the GPT disk GUID, or the MBR disk signature as eight
	// hex digits ("1234abcd").
	DiskGUID string
	// Partitions are ordered by Number.
	Partitions []Partition
	// Warnings note problems that did not prevent reading the table,
	// such as a damaged primary GPT header replaced by its backup.
	Warnings []string
}

// Partition is one entry of a partition table.
type Partition struct {
	// Number is the partition number as Linux names it: the GPT entry
	// index + 1; MBR primary slots 1-4, logical partitions from 5.
	Number int
	// Start and Size are in bytes.
	Start, Size int64
	// Type is a human name of the partition type ("EFI System", "Linux
	// filesystem", "W95 FAT16 (LBA) (0x0e)").
	Type string
	// TypeID is the GPT type GUID or the MBR type byte ("0x83").
	TypeID string
	// Name is the GPT partition name.
	Name string
	// GUID is the GPT unique partition GUID.
	GUID string
	// Attributes are the GPT attribute bits.
	Attributes uint64
	// Bootable is the MBR active flag or GPT legacy-BIOS-bootable bit.
	Bootable bool
	// Extended marks an MBR extended partition (the container of the
	// logical partitions); it holds no filesystem.
	Extended bool
	// Filesystem is what DetectFilesystem found: "ext4", "vfat", "ntfs",
	// ..., "unknown", or "" for extended partitions.
	Filesystem string
	// Label and UUID are the filesystem's label and UUID, when known.
	Label string
	UUID  string
}

// End returns the byte offset just past the partition.
func (p Partition) End() int64 { return p.Start + p.Size }

// Section returns a reader over the partition's bytes on the disk r.
func (p Partition) Section(r io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(r, p.Start, p.Size)
}

// Read reads the partition table of the disk r of size bytes. sectorSize
// is the disk's logical sector size, or 0 when unknown (512 and 4096 are
// tried). A disk without a partition table gives Type "none" and no error.
func Read(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	sizes := []int{512, 4096}
	switch sectorSize {
	case 0:
	case 512, 1024, 2048, 4096:
		sizes = []int{sectorSize}
	default:
		return nil, fmt.Errorf("read partition table: sector size %d is not 512, 1024, 2048 or 4096", sectorSize)
	}
	mbr := make([]byte, 512)
	if size < 512 {
		return &Table{Type: "none", SectorSize: sizes[0]}, nil
	}
	if _, err := r.ReadAt(mbr, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read MBR: %w", err)
	}
	hasMBR := mbr[510] == 0x55 && mbr[511] == 0xaa
	protective := hasMBR && isProtective(mbr)

	// GPT: the primary header at LBA 1 for each candidate sector size,
	// then the backups.
	var firstErr error
	for _, ss := range sizes {
		t, err := readGPT(r, size, ss, true)
		if err == nil {
			if t != nil {
				t.detect(r)
				return t, nil
			}
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, ss := range sizes {
		if firstErr == nil && !protective {
			break // no sign of a GPT anywhere: do not look for backups
		}
		t, err := readGPT(r, size, ss, false)
		if err == nil && t != nil {
			msg := "primary GPT header is missing"
			if firstErr != nil {
				msg = fmt.Sprintf("primary GPT is damaged (%v)", firstErr)
			}
			t.Warnings = append(t.Warnings, fmt.Sprintf("%s; using the backup GPT header at LBA %d", msg, size/int64(ss)-1))
			t.detect(r)
			return t, nil
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if protective {
		return nil, fmt.Errorf("%w: protective MBR but no GPT header at LBA 1 or at the last LBA", ErrInvalid)
	}
	if !hasMBR || !plausibleMBR(mbr, size) {
		return &Table{Type: "none", SectorSize: sizes[0]}, nil
	}
	var best *Table
	bestScore := -1
	for _, ss := range sizes {
		t, err := readMBR(r, size, ss, mbr)
		if err != nil {
			if best == nil && len(sizes) == 1 {
				return nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		t.detect(r)
		score := 0
		for _, p := range t.Partitions {
			if p.Filesystem != "unknown" && p.Filesystem != "" {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = t, score
		}
	}
	if best == nil {
		return nil, firstErr
	}
	return best, nil
}

// detect fills in the filesystem of every partition.
func (t *Table) detect(r io.ReaderAt) {
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.Extended {
			continue
		}
		p.Filesystem, p.Label, p.UUID = DetectFilesystem(p.Section(r), p.Size)
	}
}

// GuessSectorSize returns 4096 when the disk r of size bytes carries a
// valid GPT for 4096-byte sectors and none for 512-byte sectors, else 512.
// Image formats that do not record the guest's logical sector size (raw
// files, qcow2, VMDK, VHD) use it so that 4Kn disks are read right.
func GuessSectorSize(r io.ReaderAt, size int64) int {
	if t, err := readGPT(r, size, 512, true); t != nil || err != nil {
		return 512
	}
	for _, primary := range []bool{true, false} {
		if t, _ := readGPT(r, size, 4096, primary); t != nil {
			return 4096
		}
	}
	return 512
}
