package part

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

const MiB = 1 << 20

func sh(t testing.TB, dir, script string) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000", "PATH=/usr/sbin:/sbin:"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gptDisk builds a 64 MiB GPT disk: FAT32 ESP, ext4 root, swap, and an
// unformatted LVM partition.
func gptDisk(t *testing.T) string {
	imgtest.NeedAll(t, "sfdisk", "mkfs.ext4", "mkfs.fat", "mkswap")
	dir := t.TempDir()
	sh(t, dir, `
truncate -s 64M disk.raw
sfdisk -q disk.raw <<'EOF'
label: gpt
label-id: 0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0
unit: sectors
first-lba: 2048
start=2048,   size=69632, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=AAAAAAAA-0000-4000-8000-000000000001, name="ESP"
start=71680,  size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=AAAAAAAA-0000-4000-8000-000000000002, name="root fs", attrs="LegacyBIOSBootable"
start=104448, size=8192,  type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=AAAAAAAA-0000-4000-8000-000000000003, name="swap"
start=112640, size=4096,  type=E6D6D379-F507-44C2-A23C-238F2A3DF928, uuid=AAAAAAAA-0000-4000-8000-000000000004
EOF
mkfs.fat -C -F 32 -s 1 -n FIXFAT32 -i 1234ABCD fat32.img $((69632 / 2)) >/dev/null
mkfs.ext4 -q -F -b 4096 -L fixext4 -U 11111111-2222-3333-4444-555555555555 ext4.img 16M
truncate -s 4M swap.img && mkswap -L fixswap -U 99999999-8888-7777-6666-555555555555 swap.img >/dev/null
dd if=fat32.img of=disk.raw bs=512 seek=2048 conv=notrunc status=none
dd if=ext4.img of=disk.raw bs=512 seek=71680 conv=notrunc status=none
dd if=swap.img of=disk.raw bs=512 seek=104448 conv=notrunc status=none
`)
	return filepath.Join(dir, "disk.raw")
}

// mbrDisk builds a 48 MiB MBR disk with an extended partition holding
// three logical partitions.
func mbrDisk(t *testing.T) string {
	imgtest.NeedAll(t, "sfdisk", "mkfs.ext4", "mkfs.fat")
	dir := t.TempDir()
	sh(t, dir, `
truncate -s 48M disk.raw
sfdisk -q disk.raw <<'EOF'
label: dos
label-id: 0x1234abcd
unit: sectors
start=2048,  size=32768, type=e, bootable
start=34816, size=61440, type=5
start=36864, size=16384, type=83
start=55296, size=8192,  type=1
start=65536, size=8192,  type=83
EOF
mkfs.fat -C -F 16 -n FIXFAT16 -i 0000BEEF fat16.img $((32768 / 2)) >/dev/null
mkfs.ext4 -q -F -b 1024 -L logical5 -U 22222222-3333-4444-5555-666666666666 ext4.img 8M
mkfs.fat -C -F 12 -n SMALLFAT -i 00C0FFEE fat12.img $((8192 / 2)) >/dev/null
dd if=fat16.img of=disk.raw bs=512 seek=2048 conv=notrunc status=none
dd if=ext4.img of=disk.raw bs=512 seek=36864 conv=notrunc status=none
dd if=fat12.img of=disk.raw bs=512 seek=55296 conv=notrunc status=none
`)
	return filepath.Join(dir, "disk.raw")
}

func partString(p Partition) string {
	return fmt.Sprintf("%d %d+%d %q %s %q %s boot=%v ext=%v fs=%s %q %s", p.Number, p.Start, p.Size, p.Type, p.TypeID,
		p.Name, p.GUID, p.Bootable, p.Extended, p.Filesystem, p.Label, p.UUID)
}

func checkPartitions(t *testing.T, got []Partition, want []string) {
	t.Helper()
	var g []string
	for _, p := range got {
		g = append(g, partString(p))
	}
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("partitions\n got:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
}

var wantGPT = []string{
	`1 1048576+35651584 "EFI System" C12A7328-F81F-11D2-BA4B-00A0C93EC93B "ESP" AAAAAAAA-0000-4000-8000-000000000001 boot=false ext=false fs=fat32 "FIXFAT32" 1234-ABCD`,
	`2 36700160+16777216 "Linux filesystem" 0FC63DAF-8483-4772-8E79-3D69D8477DE4 "root fs" AAAAAAAA-0000-4000-8000-000000000002 boot=true ext=false fs=ext4 "fixext4" 11111111-2222-3333-4444-555555555555`,
	`3 53477376+4194304 "Linux swap" 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F "swap" AAAAAAAA-0000-4000-8000-000000000003 boot=false ext=false fs=swap "fixswap" 99999999-8888-7777-6666-555555555555`,
	`4 57671680+2097152 "Linux LVM" E6D6D379-F507-44C2-A23C-238F2A3DF928 "" AAAAAAAA-0000-4000-8000-000000000004 boot=false ext=false fs=unknown "" `,
}

func TestGPT(t *testing.T) {
	disk := readFile(t, gptDisk(t))
	for _, ss := range []int{0, 512} {
		tab, err := Read(bytes.NewReader(disk), int64(len(disk)), ss)
		if err != nil {
			t.Fatal(err)
		}
		if tab.Type != "gpt" || tab.SectorSize != 512 || tab.DiskGUID != "0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0" || len(tab.Warnings) != 0 {
			t.Fatalf("table %+v", tab)
		}
		checkPartitions(t, tab.Partitions, wantGPT)
	}
	// Section reads the partition's bytes.
	tab, _ := Read(bytes.NewReader(disk), int64(len(disk)), 0)
	sec := tab.Partitions[1].Section(bytes.NewReader(disk))
	sb := make([]byte, 2)
	if _, err := sec.ReadAt(sb, 1024+56); err != nil || binary.LittleEndian.Uint16(sb) != 0xef53 {
		t.Fatalf("section: %x %v", sb, err)
	}
	if sec.Size() != 16*MiB || tab.Partitions[1].End() != 36700160+16*MiB {
		t.Fatalf("section size %d", sec.Size())
	}
	if ss := GuessSectorSize(bytes.NewReader(disk), int64(len(disk))); ss != 512 {
		t.Fatalf("GuessSectorSize = %d", ss)
	}
	// A 4096-byte sector size finds nothing and says so.
	if tab, err := Read(bytes.NewReader(disk), int64(len(disk)), 4096); err == nil {
		t.Fatalf("read as 4Kn: %+v", tab)
	}
}

func TestGPTBackup(t *testing.T) {
	orig := readFile(t, gptDisk(t))
	t.Run("bad header CRC", func(t *testing.T) {
		disk := bytes.Clone(orig)
		disk[512+40] ^= 1 // first usable LBA
		tab, err := Read(bytes.NewReader(disk), int64(len(disk)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "header CRC32") || !strings.Contains(tab.Warnings[0], "backup GPT header at LBA 131071") {
			t.Fatalf("warnings %q", tab.Warnings)
		}
		checkPartitions(t, tab.Partitions, wantGPT)
	})
	t.Run("bad entries CRC", func(t *testing.T) {
		disk := bytes.Clone(orig)
		disk[1024+56] ^= 'E' // first letter of "ESP" in the primary array
		tab, err := Read(bytes.NewReader(disk), int64(len(disk)), 512)
		if err != nil {
			t.Fatal(err)
		}
		if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "entry array CRC32") {
			t.Fatalf("warnings %q", tab.Warnings)
		}
		checkPartitions(t, tab.Partitions, wantGPT)
	})
	t.Run("primary wiped", func(t *testing.T) {
		disk := bytes.Clone(orig)
		clear(disk[512:1024])
		tab, err := Read(bytes.NewReader(disk), int64(len(disk)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "missing") {
			t.Fatalf("warnings %q", tab.Warnings)
		}
		checkPartitions(t, tab.Partitions, wantGPT)
	})
	t.Run("both damaged", func(t *testing.T) {
		disk := bytes.Clone(orig)
		disk[512+40] ^= 1
		disk[len(disk)-512+40] ^= 1
		_, err := Read(bytes.NewReader(disk), int64(len(disk)), 0)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "primary GPT header (512-byte sectors) at offset 512: header CRC32") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("protective MBR without GPT", func(t *testing.T) {
		disk := bytes.Clone(orig)
		clear(disk[512:1024])
		clear(disk[len(disk)-512:])
		if _, err := Read(bytes.NewReader(disk), int64(len(disk)), 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestMBRExtended(t *testing.T) {
	disk := readFile(t, mbrDisk(t))
	tab, err := Read(bytes.NewReader(disk), int64(len(disk)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Type != "mbr" || tab.SectorSize != 512 || tab.DiskGUID != "1234abcd" {
		t.Fatalf("table %+v", tab)
	}
	checkPartitions(t, tab.Partitions, []string{
		`1 1048576+16777216 "W95 FAT16 (LBA) (0x0e)" 0x0e ""  boot=true ext=false fs=fat16 "FIXFAT16" 0000-BEEF`,
		`2 17825792+31457280 "Extended (0x05)" 0x05 ""  boot=false ext=true fs= "" `,
		`5 18874368+8388608 "Linux (0x83)" 0x83 ""  boot=false ext=false fs=ext4 "logical5" 22222222-3333-4444-5555-666666666666`,
		`6 28311552+4194304 "FAT12 (0x01)" 0x01 ""  boot=false ext=false fs=fat12 "SMALLFAT" 00C0-FFEE`,
		`7 33554432+4194304 "Linux (0x83)" 0x83 ""  boot=false ext=false fs=unknown "" `,
	})

	t.Run("EBR loop", func(t *testing.T) {
		d := bytes.Clone(disk)
		// Follow EBR 1's link to EBR 2, then point EBR 2's link at itself.
		const extStart = 34816
		link1 := binary.LittleEndian.Uint32(d[extStart*512+0x1be+16+8:])
		ebr2 := extStart + int(link1)
		binary.LittleEndian.PutUint32(d[ebr2*512+0x1be+16+8:], link1)
		_, err := Read(bytes.NewReader(d), int64(len(d)), 0)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "loops") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("partition beyond disk", func(t *testing.T) {
		d := bytes.Clone(disk)
		binary.LittleEndian.PutUint32(d[0x1be+12:], 1<<30)
		if _, err := Read(bytes.NewReader(d), int64(len(d)), 512); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
}

// put4kGPT writes a GPT for 4096-byte sectors onto disk.
func put4kGPT(disk []byte, parts [][2]uint64, names []string) {
	const ss = 4096
	le := binary.LittleEndian
	last := uint64(len(disk)/ss - 1)
	// Protective MBR.
	mbr := disk[:512]
	mbr[0x1be+4] = 0xee
	le.PutUint32(mbr[0x1be+8:], 1)
	le.PutUint32(mbr[0x1be+12:], uint32(last))
	mbr[510], mbr[511] = 0x55, 0xaa
	entries := make([]byte, 128*128)
	linux := []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}
	for i, p := range parts {
		e := entries[i*128:]
		copy(e, linux)
		e[16], e[31] = byte(i+1), 0x42
		le.PutUint64(e[32:], p[0])
		le.PutUint64(e[40:], p[1])
		for j, c := range utf16.Encode([]rune(names[i])) {
			le.PutUint16(e[56+2*j:], c)
		}
	}
	entrySectors := uint64(len(entries) / ss)
	header := func(my, alt, entryLBA uint64) []byte {
		h := make([]byte, 92)
		copy(h, "EFI PART")
		le.PutUint32(h[8:], 0x00010000)
		le.PutUint32(h[12:], 92)
		le.PutUint64(h[24:], my)
		le.PutUint64(h[32:], alt)
		le.PutUint64(h[40:], 2+entrySectors)
		le.PutUint64(h[48:], last-1-entrySectors)
		for i := range 16 {
			h[56+i] = byte(0xd0 + i)
		}
		le.PutUint64(h[72:], entryLBA)
		le.PutUint32(h[80:], 128)
		le.PutUint32(h[84:], 128)
		le.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		return h
	}
	copy(disk[ss:], header(1, last, 2))
	copy(disk[2*ss:], entries)
	copy(disk[(last-entrySectors)*ss:], entries)
	copy(disk[last*ss:], header(last, 1, last-entrySectors))
}

func TestGPT4K(t *testing.T) {
	imgtest.Need(t, "mkfs.ext4")
	dir := t.TempDir()
	sh(t, dir, `mkfs.ext4 -q -F -b 4096 -L four-k -U 44444444-5555-6666-7777-888888888888 ext4.img 8M`)
	disk := make([]byte, 16*MiB)
	put4kGPT(disk, [][2]uint64{{256, 256 + 2047}, {2304, 2559}}, []string{"data", "spare"})
	copy(disk[256*4096:], readFile(t, filepath.Join(dir, "ext4.img")))
	for _, ss := range []int{0, 4096} {
		tab, err := Read(bytes.NewReader(disk), int64(len(disk)), ss)
		if err != nil {
			t.Fatal(err)
		}
		if tab.Type != "gpt" || tab.SectorSize != 4096 || tab.DiskGUID != "D3D2D1D0-D5D4-D7D6-D8D9-DADBDCDDDEDF" {
			t.Fatalf("table %+v", tab)
		}
		checkPartitions(t, tab.Partitions, []string{
			`1 1048576+8388608 "Linux filesystem" 0FC63DAF-8483-4772-8E79-3D69D8477DE4 "data" 00000001-0000-0000-0000-000000000042 boot=false ext=false fs=ext4 "four-k" 44444444-5555-6666-7777-888888888888`,
			`2 9437184+1048576 "Linux filesystem" 0FC63DAF-8483-4772-8E79-3D69D8477DE4 "spare" 00000002-0000-0000-0000-000000000042 boot=false ext=false fs=unknown "" `,
		})
	}
	if ss := GuessSectorSize(bytes.NewReader(disk), int64(len(disk))); ss != 4096 {
		t.Fatalf("GuessSectorSize = %d", ss)
	}
	// Read as 512-byte sectors: the protective MBR is there but no GPT.
	if _, err := Read(bytes.NewReader(disk), int64(len(disk)), 512); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
	// The backup alone suffices.
	clear(disk[4096:8192])
	tab, err := Read(bytes.NewReader(disk), int64(len(disk)), 0)
	if err != nil || len(tab.Partitions) != 2 || len(tab.Warnings) != 1 || !strings.Contains(tab.Warnings[0], "LBA 4095") {
		t.Fatalf("backup: %+v, %v", tab, err)
	}
}

// TestFdisk4K reads a GPT that fdisk wrote for 4096-byte sectors.
func TestFdisk4K(t *testing.T) {
	imgtest.Need(t, "fdisk")
	dir := t.TempDir()
	sh(t, dir, `truncate -s 32M d.raw
printf 'g\nn\n1\n\n+8M\nn\n2\n\n+4M\nt\n2\n19\nw\n' | fdisk -b 4096 d.raw >/dev/null`)
	disk := readFile(t, filepath.Join(dir, "d.raw"))
	r := bytes.NewReader(disk)
	if ss := GuessSectorSize(r, int64(len(disk))); ss != 4096 {
		t.Fatalf("GuessSectorSize = %d", ss)
	}
	tab, err := Read(r, int64(len(disk)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Type != "gpt" || tab.SectorSize != 4096 || len(tab.Partitions) != 2 {
		t.Fatalf("table %+v", tab)
	}
	p1, p2 := tab.Partitions[0], tab.Partitions[1]
	if p1.Start != 256*4096 || p1.Size != 8*MiB || p1.Type != "Linux filesystem" ||
		p2.Start != 2304*4096 || p2.Size != 4*MiB || p2.Type != "Linux swap" {
		t.Fatalf("partitions %+v", tab.Partitions)
	}
}

func TestNoTable(t *testing.T) {
	imgtest.NeedAll(t, "mkfs.ext4", "mkfs.fat")
	dir := t.TempDir()
	sh(t, dir, `mkfs.ext4 -q -F -L bare ext4.img 4M; mkfs.fat -C -n BAREFAT fat.img 4096 >/dev/null`)
	for _, name := range []string{"ext4.img", "fat.img"} {
		b := readFile(t, filepath.Join(dir, name))
		tab, err := Read(bytes.NewReader(b), int64(len(b)), 0)
		if err != nil || tab.Type != "none" || len(tab.Partitions) != 0 {
			t.Fatalf("%s: %+v, %v", name, tab, err)
		}
	}
	tab, err := Read(bytes.NewReader(nil), 0, 0)
	if err != nil || tab.Type != "none" {
		t.Fatalf("empty disk: %+v, %v", tab, err)
	}
	if _, err := Read(bytes.NewReader(nil), 0, 1000); err == nil {
		t.Fatal("sector size 1000 accepted")
	}
}

func TestDetectFilesystem(t *testing.T) {
	imgtest.NeedAll(t, "mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "mkfs.fat", "mkswap")
	dir := t.TempDir()
	sh(t, dir, `
mkfs.ext2 -q -F -L e2 -U 00000000-0000-0000-0000-000000000002 ext2.img 2M
mkfs.ext3 -q -F -L e3 -U 00000000-0000-0000-0000-000000000003 ext3.img 4M
mkfs.ext4 -q -F -L e4 -U 00000000-0000-0000-0000-000000000004 ext4.img 4M
mkfs.fat -C -F 12 -n F12 -i 00000012 fat12.img 2048 >/dev/null
mkfs.fat -C -F 16 -i 00000016 fat16.img 20480 >/dev/null
mkfs.fat -C -F 32 -n F32 -i 00000032 fat32.img 40960 >/dev/null
truncate -s 1M swap.img && mkswap swap.img >/dev/null
`)
	for _, tc := range []struct{ file, fs, label, uuid string }{
		{"ext2.img", "ext2", "e2", "00000000-0000-0000-0000-000000000002"},
		{"ext3.img", "ext3", "e3", "00000000-0000-0000-0000-000000000003"},
		{"ext4.img", "ext4", "e4", "00000000-0000-0000-0000-000000000004"},
		{"fat12.img", "fat12", "F12", "0000-0012"},
		{"fat16.img", "fat16", "", "0000-0016"},
		{"fat32.img", "fat32", "F32", "0000-0032"},
		{"swap.img", "swap", "", ""},
	} {
		b := readFile(t, filepath.Join(dir, tc.file))
		fs, label, uuid := DetectFilesystem(bytes.NewReader(b), int64(len(b)))
		if fs != tc.fs || label != tc.label || (tc.uuid != "" && uuid != tc.uuid) {
			t.Errorf("%s: got %s %q %s, want %s %q %s", tc.file, fs, label, uuid, tc.fs, tc.label, tc.uuid)
		}
		// blkid, where installed, must agree on label and UUID.
		if _, err := exec.LookPath("blkid"); err == nil {
			out, err := exec.Command("blkid", "-p", "-o", "export", filepath.Join(dir, tc.file)).Output()
			if err != nil {
				t.Fatalf("blkid %s: %v", tc.file, err)
			}
			vals := map[string]string{}
			for _, line := range strings.Split(string(out), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					vals[k] = v
				}
			}
			if vals["LABEL"] != label || vals["UUID"] != uuid {
				t.Errorf("%s: blkid says label %q uuid %q, we say %q %q", tc.file, vals["LABEL"], vals["UUID"], label, uuid)
			}
		}
	}
	for name, b := range handmadeVolumes() {
		want := strings.Split(name, "|")
		fs, label, uuid := DetectFilesystem(bytes.NewReader(b), int64(len(b)))
		if fs != want[0] || label != want[1] || uuid != want[2] {
			t.Errorf("%s: got %s|%s|%s", name, fs, label, uuid)
		}
	}
	if fs, _, _ := DetectFilesystem(bytes.NewReader(make([]byte, 1<<20)), 1<<20); fs != "unknown" {
		t.Errorf("zeros detected as %s", fs)
	}
}

// handmadeVolumes returns superblocks of the filesystems with no mkfs on
// this machine, keyed "type|label|uuid", laid out per their specifications.
func handmadeVolumes() map[string][]byte {
	le := binary.LittleEndian
	out := map[string][]byte{}
	uuid := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	const u = "12345678-9abc-def0-0123-456789abcdef"

	xfs := make([]byte, 64<<10)
	copy(xfs, "XFSB")
	copy(xfs[32:], uuid)
	copy(xfs[108:], "xfslabel")
	out["xfs|xfslabel|"+u] = xfs

	btrfs := make([]byte, 128<<10)
	copy(btrfs[64<<10+32:], uuid)
	copy(btrfs[64<<10+64:], "_BHRfS_M")
	copy(btrfs[64<<10+299:], "my btrfs")
	out["btrfs|my btrfs|"+u] = btrfs

	luks := make([]byte, 4096)
	copy(luks, "LUKS\xba\xbe\x00\x02")
	copy(luks[24:], "cryptroot")
	copy(luks[168:], u)
	out["luks|cryptroot|"+u] = luks

	lvm := make([]byte, 4096)
	copy(lvm[512:], "LABELONE")
	le.PutUint32(lvm[512+20:], 32)
	copy(lvm[512+24:], "LVM2 001")
	copy(lvm[512+32:], "abcdefghijklmnopqrstuvwxyz012345")
	out["lvm2||abcdef-ghij-klmn-opqr-stuv-wxyz-012345"] = lvm

	iso := make([]byte, 40<<10)
	iso[32768] = 1
	copy(iso[32769:], "CD001")
	copy(iso[32768+40:], "MY_CDROM                        ")
	out["iso9660|MY_CDROM|"] = iso

	// exFAT: 512-byte sectors, 4 KiB clusters, heap at sector 64, root
	// directory in cluster 5 with a bitmap entry and the label entry.
	exfat := make([]byte, 64*512+8*4096)
	copy(exfat[3:], "EXFAT   ")
	le.PutUint32(exfat[88:], 64)
	le.PutUint32(exfat[96:], 5)
	le.PutUint32(exfat[100:], 0xdeadbeef)
	exfat[108], exfat[109] = 9, 3
	rootDir := exfat[64*512+3*4096:]
	rootDir[0] = 0x81
	rootDir[32], rootDir[33] = 0x83, 5
	for i, c := range utf16.Encode([]rune("Daten")) {
		le.PutUint16(rootDir[34+2*i:], c)
	}
	out["exfat|Daten|DEAD-BEEF"] = exfat

	out["ntfs|Windows Data|0123456789ABCDEF"] = handmadeNTFS("Windows Data")
	return out
}

// handmadeNTFS builds an NTFS boot sector and an MFT whose record 3
// ($Volume) carries a $VOLUME_NAME attribute split by a fixup.
func handmadeNTFS(label string) []byte {
	le := binary.LittleEndian
	const cluster, mftLCN, rec = 4096, 4, 1024
	v := make([]byte, 64<<10)
	copy(v[3:], "NTFS    ")
	le.PutUint16(v[11:], 512)
	v[13] = 8
	le.PutUint64(v[0x30:], mftLCN)
	v[0x40] = 0xf6 // -10: 1024-byte records
	le.PutUint64(v[0x48:], 0x0123456789abcdef)
	v[510], v[511] = 0x55, 0xaa
	r := v[mftLCN*cluster+3*rec:][:rec]
	copy(r, "FILE")
	le.PutUint16(r[4:], 0x30) // update sequence array
	le.PutUint16(r[6:], 3)
	le.PutUint16(r[0x14:], 0x1f0) // first attribute, straddling the first sector's end
	name := utf16.Encode([]rune(label))
	a := r[0x1f0:]
	le.PutUint32(a, 0x60)
	le.PutUint32(a[4:], uint32(24+2*len(name)+7)&^7)
	le.PutUint32(a[0x10:], uint32(2*len(name)))
	le.PutUint16(a[0x14:], 24)
	for i, c := range name {
		le.PutUint16(a[24+2*i:], c)
	}
	next := 0x1f0 + int(le.Uint32(a[4:]))
	le.PutUint32(r[next:], 0xffffffff)
	// Fixups: the true last two bytes of each sector go to the array,
	// the sequence number takes their place.
	copy(r[0x32:0x34], r[510:512])
	copy(r[0x34:0x36], r[1022:1024])
	le.PutUint16(r[0x30:], 7)
	le.PutUint16(r[510:], 7)
	le.PutUint16(r[1022:], 7)
	return v
}
