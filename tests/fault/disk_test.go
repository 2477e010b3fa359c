package fault_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// qemuImg runs qemu-img.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// patch writes b into the file at off.
func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// badImage is a damaged disk image and what its error must name.
type badImage struct {
	name   string
	path   string
	format string   // --format, "" = detect
	want   []string // patterns stderr must match
}

// TestBadDiskImages backs up truncated and corrupted images and
// differencing disks whose parent is missing.
func TestBadDiskImages(t *testing.T) {
	needTool(t, "qemu-img")
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	good := filepath.Join(base, "good.raw")
	writeDisk(t, good, 81, 8<<20)
	first, _ := backup(t, 0, repoDir, "--disk", good, "--name", "good")

	img := func(name string) string { return filepath.Join(base, name) }
	var cases []badImage
	for _, f := range []struct{ qemu, ext string }{{"vmdk", "vmdk"}, {"vpc", "vhd"}, {"qcow2", "qcow2"}} { // ext is also bunker's --format
		p := img("trunc." + f.ext)
		qemuImg(t, "convert", "-f", "raw", "-O", f.qemu, good, p)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, badImage{name: "truncated " + f.ext, path: p, want: []string{regexp.QuoteMeta(p)}})
		// Truncated and its format named: the reader itself must notice.
		cases = append(cases, badImage{name: "truncated " + f.ext + " (--format)", path: p, format: f.ext, want: []string{regexp.QuoteMeta(p)}})
	}

	// Corrupted headers and tables.
	qcow := img("bad-l1.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", good, qcow)
	patch(t, qcow, 40, be64(1<<50)) // l1_table_offset far beyond the file
	cases = append(cases, badImage{name: "qcow2 L1 table beyond the file", path: qcow, want: []string{regexp.QuoteMeta(qcow), `(?i)l1`, `offset`}})

	vmdk := img("bad-gd.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", good, vmdk)
	patch(t, vmdk, 56, le64(1<<40)) // gdOffset (sectors) far beyond the file
	cases = append(cases, badImage{name: "vmdk grain directory beyond the file", path: vmdk, want: []string{regexp.QuoteMeta(vmdk), `(?i)grain`, `offset`}})

	vhd := img("bad-footer.vhd")
	qemuImg(t, "convert", "-f", "raw", "-O", "vpc", good, vhd)
	fi, err := os.Stat(vhd)
	if err != nil {
		t.Fatal(err)
	}
	patch(t, vhd, fi.Size()-512+64, []byte{0xde, 0xad, 0xbe, 0xef}) // footer checksum
	patch(t, vhd, 64, []byte{0xde, 0xad, 0xbe, 0xef})               // and its copy
	cases = append(cases, badImage{name: "vhd footer checksum", path: vhd, format: "vhd", want: []string{regexp.QuoteMeta(vhd), `(?i)footer`, `(?i)checksum`, `offset`}})

	vhdBAT := img("bad-dynheader.vhd")
	qemuImg(t, "convert", "-f", "raw", "-O", "vpc", good, vhdBAT)
	patch(t, vhdBAT, 512+36, []byte{0xde, 0xad, 0xbe, 0xef}) // dynamic header checksum
	cases = append(cases, badImage{name: "vhd dynamic header checksum", path: vhdBAT, want: []string{regexp.QuoteMeta(vhdBAT), `(?i)header`, `(?i)checksum`, `offset`}})

	// Differencing disks whose parent is gone.
	parentQ, childQ := img("parent.qcow2"), img("child.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", good, parentQ)
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", parentQ, "-F", "qcow2", childQ)
	parentV, childV := img("parent.vmdk"), img("child.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", good, parentV)
	qemuImg(t, "create", "-q", "-f", "vmdk", "-b", parentV, "-F", "vmdk", childV)
	for _, p := range []string{parentQ, parentV} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	cases = append(cases,
		badImage{name: "qcow2 overlay without its backing file", path: childQ, want: []string{regexp.QuoteMeta(childQ), regexp.QuoteMeta(parentQ)}},
		badImage{name: "vmdk child without its parent", path: childV, want: []string{regexp.QuoteMeta(childV), regexp.QuoteMeta(parentV)}},
	)

	packs := listFiles(t, filepath.Join(repoDir, "data"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"backup", "-r", repoDir, "--disk", c.path, "--name", "bad"}
			if c.format != "" {
				args = append(args, "--format", c.format)
			}
			res := run(t, args...)
			t.Logf("%s", res)
			if res.code != 1 && res.code != 3 {
				t.Fatalf("want exit status 1 (or 3 with an incomplete snapshot):\n%s", res)
			}
			wantStderr(t, res, c.want...)
			wantStderr(t, res, `(?m)^bunker: (error|warning): `)
			if res.code == 1 {
				if sn := snapshotFiles(t, repoDir); !slices.Equal(sn, []string{first.SnapshotID}) {
					t.Errorf("a failed backup wrote a snapshot: %v", sn)
				}
			}
			// Nothing of the damaged source was stored.
			if now := listFiles(t, filepath.Join(repoDir, "data")); !slices.Equal(now, packs) {
				t.Errorf("the backup of an unreadable image stored %d new pack(s)", len(now)-len(packs))
			}
		})
	}
	checkRepo(t, repoDir)
	restoreDiskAndCompare(t, repoDir, first.SnapshotID, "good", good)
}

// TestRestoreToSmallerDevice restores a disk onto a block device smaller
// than the disk: it must refuse before writing anything.
func TestRestoreToSmallerDevice(t *testing.T) {
	needRoot(t, "a loop device")
	needTool(t, "losetup")
	base := t.TempDir()
	repoDir := filepath.Join(base, "repo")
	initRepo(t, repoDir)
	disk := filepath.Join(base, "disk.raw")
	writeDisk(t, disk, 91, 8<<20)
	first, _ := backup(t, 0, repoDir, "--disk", disk, "--name", "vm")

	backing := filepath.Join(base, "small.img")
	marker := bytes.Repeat([]byte("untouched "), 4<<20/10+1)[:4<<20]
	if err := os.WriteFile(backing, marker, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).Output()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("losetup: %v", err)
		}
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })

	for _, extra := range [][]string{nil, {"--delta"}} {
		args := append([]string{"restore", "-r", repoDir, first.SnapshotID, "--disk", "vm", "--to", dev, "--force"}, extra...)
		res := run(t, args...)
		t.Logf("%s", res)
		if res.code != 1 {
			t.Errorf("want exit status 1:\n%s", res)
		}
		wantStderr(t, res, `(?m)^bunker: error: .*`+regexp.QuoteMeta(dev), `(?i)(smaller|too small|size)`)
		got, err := os.ReadFile(dev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, marker) {
			t.Fatalf("restore %v wrote to the device although it is smaller than the disk", extra)
		}
	}
}
