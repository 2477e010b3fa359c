package part

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// TestReferenceFixtures reads the disks of make-fixtures.sh (see
// [imgtest.ReferenceFixtures]).
func TestReferenceFixtures(t *testing.T) {
	dir := imgtest.ReferenceFixtures(t)
	for _, tc := range []struct {
		disk string
		want []string
	}{
		{"disk-gpt.raw", []string{
			`1 1048576+50331648 "EFI System" C12A7328-F81F-11D2-BA4B-00A0C93EC93B "ESP" AAAAAAAA-0000-4000-8000-000000000001 boot=false ext=false fs=fat32 "FIXFAT32" 1234-ABCD`,
			`2 51380224+67108864 "Linux filesystem" 0FC63DAF-8483-4772-8E79-3D69D8477DE4 "root" AAAAAAAA-0000-4000-8000-000000000002 boot=false ext=false fs=ext4 "fixext4" 11111111-2222-3333-4444-555555555555`,
		}},
		{"disk-mbr.raw", nil},
	} {
		f, err := os.Open(filepath.Join(dir, tc.disk))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		tab, err := Read(f, st.Size(), 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tab.Partitions {
			t.Log(partString(p))
		}
		if tc.want != nil {
			checkPartitions(t, tab.Partitions, tc.want)
		}
	}
}
