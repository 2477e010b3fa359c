package drill_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/backup"
	"github.com/bunkerbackup/bunker/drill"
	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/repotest"
	_ "github.com/bunkerbackup/bunker/vmdisk/all"
)

// snapshot backs up a small tree (with a sparse file and a symlink) and a
// sparse 8 MiB raw disk.
func snapshot(t *testing.T, r *repo.Repository) *repo.Snapshot {
	t.Helper()
	src := t.TempDir()
	repotest.WriteFile(t, filepath.Join(src, "a.bin"), repotest.Random(1, 3<<20))
	repotest.WriteFile(t, filepath.Join(src, "dir", "small.txt"), []byte("hello drill\n"))
	repotest.WriteFile(t, filepath.Join(src, "dir", "empty"), nil)
	sparse := append(make([]byte, 2<<20), repotest.Random(2, 100000)...)
	repotest.WriteFile(t, filepath.Join(src, "sparse.img"), sparse)
	if err := os.Symlink("dir/small.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "vm1.raw")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(8 << 20)
	f.WriteAt(repotest.Random(3, 1<<20), 0)
	f.WriteAt(repotest.Random(4, 300000), 5<<20)
	f.Close()
	sn, err := backup.Run(context.Background(), r, backup.Sources{
		Paths: []string{src},
		Disks: []backup.DiskSource{{Path: img, Name: "vm1"}},
	}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

type phases struct {
	seen     []string
	onVerify func(item string)
}

func (p *phases) Phase(item, phase string) {
	p.seen = append(p.seen, item+"/"+phase)
	if phase == "verify" && p.onVerify != nil {
		p.onVerify(item)
	}
}
func (p *phases) Total(int64, int64) {}
func (p *phases) Done(int64, int64)  {}

func TestDrill(t *testing.T) {
	r := repotest.New(t)
	sn := snapshot(t, r)
	for _, format := range []string{"", "vmdk", "vhd"} {
		t.Run("format="+format, func(t *testing.T) {
			scratch := t.TempDir()
			prog := &phases{}
			rep, err := drill.Run(context.Background(), r, sn, drill.Options{Scratch: scratch, Format: format, Progress: prog})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("drill failed: %v", rep.Failures())
			}
			want := []string{"files", "disk:vm1"}
			if format != "" {
				want = append(want, "disk:vm1 ("+format+")")
			}
			if len(rep.Items) != len(want) {
				t.Fatalf("items %+v, want %v", rep.Items, want)
			}
			for i, it := range rep.Items {
				if it.Name != want[i] {
					t.Errorf("item %d is %q, want %q", i, it.Name, want[i])
				}
				if it.Restore <= 0 || it.Verify <= 0 {
					t.Errorf("%s: restore %v, verify %v", it.Name, it.Restore, it.Verify)
				}
			}
			files := rep.Items[0]
			if files.Files != 4 || files.Verified != 4 || files.Bytes != 3<<20+100000+12 || files.Size != 3<<20+2<<20+100000+12 {
				t.Errorf("files item %+v", files)
			}
			d := rep.Items[1]
			if d.Verified != 1 || d.Bytes != sn.Disks[0].DataBytes || d.Digest != sn.Disks[0].Digest || d.Size != 8<<20 {
				t.Errorf("disk item %+v (snapshot disk %+v)", d, sn.Disks[0])
			}
			if rep.Disks != 1 || rep.Files != 4 || rep.Restore < d.Restore || rep.Total < rep.Restore+rep.Verify {
				t.Errorf("report %+v", rep)
			}
			// The totals count the disk once, whatever --format adds.
			if rep.Bytes != files.Bytes+d.Bytes || rep.Restore != files.Restore+d.Restore || rep.Verify != files.Verify+d.Verify {
				t.Errorf("totals: bytes %d restore %v verify %v, want %d %v %v (the files and the raw disk)",
					rep.Bytes, rep.Restore, rep.Verify, files.Bytes+d.Bytes, files.Restore+d.Restore, files.Verify+d.Verify)
			}
			if d.Container || (format != "" && !rep.Items[2].Container) {
				t.Errorf("Container marks: raw %v, %s %v", d.Container, format, format != "" && rep.Items[2].Container)
			}
			if rep.SpaceNeeded < sn.Disks[0].DataBytes {
				t.Errorf("space needed %d, less than the disk's data", rep.SpaceNeeded)
			}
			if left, _ := os.ReadDir(scratch); len(left) != 0 {
				t.Errorf("scratch not cleaned up: %v", left)
			}
			if len(prog.seen) != 2*len(want) || prog.seen[0] != "files/restore" || prog.seen[1] != "files/verify" {
				t.Errorf("phases %v", prog.seen)
			}
		})
	}
}

func TestDrillKeep(t *testing.T) {
	r := repotest.New(t)
	sn := snapshot(t, r)
	rep, err := drill.Run(context.Background(), r, sn, drill.Options{Scratch: t.TempDir(), Keep: true})
	if err != nil || !rep.OK() {
		t.Fatal(err, rep.Failures())
	}
	got, err := os.ReadFile(filepath.Join(rep.Items[0].Path, sn.Paths[0][1:], "dir", "small.txt"))
	if err != nil || string(got) != "hello drill\n" {
		t.Fatalf("kept file: %q, %v", got, err)
	}
	if fi, err := os.Stat(rep.Items[1].Path); err != nil || fi.Size() != 8<<20 {
		t.Fatalf("kept disk: %v", err)
	}
}

// A restored copy that is changed before verification is caught: the
// verification reads what is on disk, independently of the restore.
func TestDrillDetectsDamage(t *testing.T) {
	r := repotest.New(t)
	sn := snapshot(t, r)
	scratch := t.TempDir()
	prog := &phases{onVerify: func(item string) {
		dirs, _ := filepath.Glob(filepath.Join(scratch, "bunker-drill-*"))
		if len(dirs) != 1 {
			t.Errorf("scratch dirs %v", dirs)
			return
		}
		switch item {
		case "files":
			p := filepath.Join(dirs[0], "files", sn.Paths[0][1:], "a.bin")
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.WriteAt([]byte("X"), 1<<20)
			f.Close()
		case "disk:vm1":
			f, err := os.OpenFile(filepath.Join(dirs[0], "disk-vm1.raw"), os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.WriteAt([]byte("X"), 7<<20) // in a hole
			f.Close()
		}
	}}
	rep, err := drill.Run(context.Background(), r, sn, drill.Options{Scratch: scratch, Progress: prog})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("damage not detected")
	}
	fails := strings.Join(rep.Failures(), "\n")
	if !strings.Contains(fails, "files: verify /") || !strings.Contains(fails, "a.bin: ") || !strings.Contains(fails, "disk:vm1: verify: ") {
		t.Errorf("failures:\n%s", fails)
	}
	if rep.Items[0].Verified != 3 || rep.Items[1].Verified != 0 {
		t.Errorf("verified %d files, disk %d", rep.Items[0].Verified, rep.Items[1].Verified)
	}
}

func TestDrillNoSpace(t *testing.T) {
	r := repotest.New(t)
	sn := snapshot(t, r)
	scratch := t.TempDir()
	_, err := drill.Run(context.Background(), r, sn, drill.Options{
		Scratch:   scratch,
		FreeSpace: func(string) (int64, error) { return 1 << 20, nil },
	})
	var se *drill.SpaceError
	if !errors.As(err, &se) || se.Free != 1<<20 || se.Need < 3<<20 || se.Dir != scratch {
		t.Fatalf("err %v", err)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("something was written: %v", left)
	}
	// Kept copies need the sum of the items, the largest item otherwise.
	need, needKeep := se.Need, int64(0)
	_, err = drill.Run(context.Background(), r, sn, drill.Options{
		Scratch: scratch, Keep: true,
		FreeSpace: func(string) (int64, error) { return 1, nil },
	})
	if errors.As(err, &se) {
		needKeep = se.Need
	}
	if needKeep <= need {
		t.Errorf("keep needs %d, without keep %d", needKeep, need)
	}
}

func TestDrillBadFormat(t *testing.T) {
	r := repotest.New(t)
	sn := snapshot(t, r)
	if _, err := drill.Run(context.Background(), r, sn, drill.Options{Scratch: t.TempDir(), Format: "qcow9"}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// Cancelling stops the drill with the context's error and still removes
// the scratch copy.
func TestDrillCancel(t *testing.T) {
	r := repotest.New(t)
	sn := snapshot(t, r)
	scratch := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prog := &phases{onVerify: func(string) { cancel() }}
	_, err := drill.Run(ctx, r, sn, drill.Options{Scratch: scratch, Progress: prog})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch not cleaned up: %v", left)
	}
}
