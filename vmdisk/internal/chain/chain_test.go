package chain

import (
	"slices"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

func TestInherit(t *testing.T) {
	child := vmdisk.Info{Files: []string{"c"}, Reasons: []string{"c: locked"}, InUse: true}
	Inherit(&child, vmdisk.Info{Files: []string{"p", "gp"}})
	if !slices.Equal(child.Files, []string{"c", "p", "gp"}) || !child.InUse || !slices.Equal(child.Reasons, []string{"c: locked"}) {
		t.Fatalf("clean parent: %+v", child)
	}
	child = vmdisk.Info{Files: []string{"c"}}
	Inherit(&child, vmdisk.Info{Files: []string{"p"}, InUse: true, Reasons: []string{"p: dirty"}})
	if !child.InUse || !slices.Equal(child.Reasons, []string{"p: dirty"}) {
		t.Fatalf("parent in use: %+v", child)
	}
}
