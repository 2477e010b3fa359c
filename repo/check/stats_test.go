package check_test

import (
	"context"
	"testing"

	"github.com/bunkerbackup/bunker/repo/check"
	"github.com/bunkerbackup/bunker/repo/repotest"
)

func TestComputeStats(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	fixture(t, r, 1)
	fixture(t, r, 2)
	sns, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := check.ComputeStats(ctx, r, sns)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Snapshots) != 2 {
		t.Fatalf("%d snapshot figures", len(st.Snapshots))
	}
	s := st.Snapshots[0]
	if s.ID != sns[0].ID || !s.Time.Equal(sns[0].Time) || s.Time.IsZero() || s.Files != 2 || s.Dirs != 1 || s.FileBytes != 203000 || s.DiskBytes != 2<<20 || s.LogicalBytes != 203000+2<<20 {
		t.Fatalf("snapshot figures %+v", s)
	}
	// 13 distinct blobs, all referenced.
	if st.Referenced.DataBlobs+st.Referenced.TreeBlobs != 13 || st.Referenced != st.Repository {
		t.Fatalf("referenced %+v, repository %+v", st.Referenced, st.Repository)
	}
	one, err := check.ComputeStats(ctx, r, sns[:1])
	if err != nil {
		t.Fatal(err)
	}
	if one.Referenced.DataBlobs != 4 || one.Referenced.TreeBlobs != 3 || one.PackBytes == 0 {
		t.Fatalf("one snapshot: %+v", one.Referenced)
	}
}
