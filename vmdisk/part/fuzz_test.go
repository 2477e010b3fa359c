package part

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func seedFiles(f *testing.F, pattern string) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("testdata", pattern))
	if len(paths) == 0 {
		f.Fatalf("no seeds matching testdata/%s", pattern)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzRead feeds whole (small) disks to the MBR/GPT parser, with each
// sector size. Seeds: sfdisk-made GPT and MBR/EBR disks and a 4096-byte
// sector GPT.
func FuzzRead(f *testing.F) {
	for _, b := range seedFiles(f, "*.img") {
		f.Add(b, uint16(0))
		f.Add(b, uint16(512))
	}
	disk := make([]byte, 64<<10)
	put4kGPT(disk, [][2]uint64{{6, 8}, {9, 10}}, []string{"a", "b"})
	f.Add(disk, uint16(4096))
	f.Fuzz(func(t *testing.T, disk []byte, ss uint16) {
		tab, err := Read(bytes.NewReader(disk), int64(len(disk)), int(ss))
		if err != nil {
			return
		}
		for _, p := range tab.Partitions {
			if p.Start < 0 || p.Size <= 0 || p.End() > int64(len(disk)) {
				t.Fatalf("partition %d at %d+%d outside a %d-byte disk", p.Number, p.Start, p.Size, len(disk))
			}
		}
	})
}

// FuzzDetectFilesystem feeds superblocks to the filesystem probes. Seeds:
// heads of mkfs-made ext4, FAT12, FAT32 and swap volumes and hand-made
// superblocks of the others.
func FuzzDetectFilesystem(f *testing.F) {
	for _, b := range seedFiles(f, "fs-*.head") {
		f.Add(b)
	}
	for _, b := range handmadeVolumes() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, _, _ := DetectFilesystem(bytes.NewReader(b), int64(len(b)))
		if fs == "" {
			t.Fatal("empty filesystem type")
		}
	})
}

func TestSeedDisks(t *testing.T) {
	b, _ := os.ReadFile("testdata/mbr-ext.img")
	tab, err := Read(bytes.NewReader(b), int64(len(b)), 0)
	if err != nil || tab.Type != "mbr" || len(tab.Partitions) != 5 || tab.Partitions[0].Filesystem != "fat12" || tab.Partitions[4].Number != 7 {
		t.Fatalf("mbr-ext.img: %+v %v", tab, err)
	}
	b, _ = os.ReadFile("testdata/gpt-512.img")
	tab, err = Read(bytes.NewReader(b), int64(len(b)), 0)
	if err != nil || tab.Type != "gpt" || len(tab.Partitions) != 2 || tab.Partitions[0].Label != "SEEDFAT" || !tab.Partitions[1].Bootable {
		t.Fatalf("gpt-512.img: %+v %v", tab, err)
	}
}
