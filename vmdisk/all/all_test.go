package all_test

import (
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	_ "github.com/bunkerbackup/bunker/vmdisk/all"
)

func TestAllFormatsRegistered(t *testing.T) {
	got := vmdisk.Formats()
	for _, want := range []string{"vmdk", "vhd", "vhdx", "qcow2", "device", "raw"} {
		if !slices.Contains(got, want) {
			t.Errorf("format %q not registered; have %v", want, got)
		}
	}
	if got[len(got)-1] != "raw" {
		t.Errorf("raw must be probed last, order is %v", got)
	}
}
