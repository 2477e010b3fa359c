package qcow2

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

const MiB = 1 << 20

func run(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	fixOnce sync.Once
	fixDir  string
	fixErr  error
)

// fixtureDir builds the qcow2 fixtures once per test binary.
func fixtureDir(t testing.TB) string {
	t.Helper()
	imgtest.NeedAll(t, "qemu-img", "qemu-io", "fdisk")
	fixOnce.Do(func() { fixDir, fixErr = buildFixtures() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fixDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// buildFixtures writes a 24 MiB source disk with random data, a repeating
// pattern and a marker, and converts it into every qcow2 variant.
func buildFixtures() (string, error) {
	dir, err := os.MkdirTemp("", "qcow2-fixtures-")
	if err != nil {
		return "", err
	}
	src := make([]byte, 24*MiB)
	if _, err := rand.Read(src[1*MiB : 4*MiB]); err != nil {
		return "", err
	}
	pat := []byte("DEDUP-PATTERN-0123456789abcdef\n")
	for i := 10 * MiB; i < 11*MiB; i++ {
		src[i] = pat[i%len(pat)]
	}
	for i := 20 * MiB; i < 21*MiB; i++ {
		src[i] = "BASE-MARKER\n"[i%12]
	}
	copy(src[24*MiB-4096:], "last sector data")
	if err := os.WriteFile(filepath.Join(dir, "base.raw"), src, 0o644); err != nil {
		return "", err
	}
	odd := src[:10*MiB+3584]
	if err := os.WriteFile(filepath.Join(dir, "odd.raw"), odd, 0o644); err != nil {
		return "", err
	}
	cmds := [][]string{
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "base.raw", "v3.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", "base.raw", "v2.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "base.raw", "compressed.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd", "base.raw", "zstd.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", "base.raw", "small-cluster.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "extended_l2=on", "base.raw", "extl2.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512", "base.raw", "cluster512.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "cluster_size=2M", "base.raw", "cluster2M.qcow2"},
		// An internal snapshot, then changes: only the active L1 counts.
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "base.raw", "snapshot.qcow2"},
		{"qemu-img", "snapshot", "-c", "before", "snapshot.qcow2"},
		{"qemu-io", "-f", "qcow2", "-c", "write -P 0x99 1M 64k", "-c", "write -z 10M 128k", "snapshot.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "odd.raw", "odd.qcow2"},
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "odd.raw", "odd-compressed.qcow2"},
		// An overlay: new data, a zero cluster hiding the base marker,
		// a zero cluster over base data.
		{"qemu-img", "create", "-q", "-f", "qcow2", "-b", "v3.qcow2", "-F", "qcow2", "overlay.qcow2"},
		{"qemu-io", "-f", "qcow2", "-c", "write -P 0xab 2M 1M", "-c", "write -z 20M 64k", "-c", "write -P 0xcd 23M 4k", "overlay.qcow2"},
		// A v2 overlay over a compressed base; its backing format
		// extension is removed below, so the base is probed.
		{"qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "compressed.qcow2", "-F", "qcow2", "overlay-v2.qcow2"},
		{"qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 128k", "overlay-v2.qcow2"},
		// Three levels, the top one larger than its backing file.
		{"qemu-img", "create", "-q", "-f", "qcow2", "-b", "overlay.qcow2", "-F", "qcow2", "top.qcow2", "32M"},
		{"qemu-io", "-f", "qcow2", "-c", "write -P 0x77 30M 512k", "-c", "write -P 0x78 3M 8k", "top.qcow2"},
		// Extended L2 overlay with subcluster writes.
		{"qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "extl2.qcow2", "-F", "qcow2", "overlay-extl2.qcow2"},
		{"qemu-io", "-f", "qcow2", "-c", "write -P 0x11 4k 4k", "-c", "write -z 1M 2k", "-c", "write -P 0x22 21M 6k", "overlay-extl2.qcow2"},
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		return "", err
	}
	cmds = append(cmds,
		// A 4Kn disk: fdisk writes a GPT for 4096-byte sectors.
		[]string{"bash", "-c", "truncate -s 16M 4k.raw && printf 'g\\nn\\n1\\n\\n+4M\\nw\\n' | fdisk -b 4096 4k.raw >/dev/null"},
		[]string{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "4k.raw", "4k.qcow2"},
		// Backing file named relative to the overlay's directory.
		[]string{"qemu-img", "create", "-q", "-f", "qcow2", "-b", "../v3.qcow2", "-F", "qcow2", "sub/relative.qcow2"},
		[]string{"qemu-io", "-f", "qcow2", "-c", "write -P 0x42 5M 64k", "sub/relative.qcow2"},
	)
	for _, c := range cmds {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	// Rename the backing format extension to one readers ignore.
	p := filepath.Join(dir, "overlay-v2.qcow2")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	i := bytes.Index(b[:4096], []byte{0xe2, 0x79, 0x2a, 0xca})
	if i < 0 {
		return "", fmt.Errorf("%s: no backing format extension", p)
	}
	copy(b[i:], []byte{0x12, 0x34, 0x56, 0x78})
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

var allFixtures = []string{
	"v3.qcow2", "v2.qcow2", "compressed.qcow2", "zstd.qcow2", "small-cluster.qcow2", "extl2.qcow2",
	"cluster512.qcow2", "cluster2M.qcow2", "snapshot.qcow2", "odd.qcow2", "odd-compressed.qcow2", "overlay.qcow2", "overlay-v2.qcow2", "top.qcow2",
	"overlay-extl2.qcow2", "sub/relative.qcow2",
}

// qemuRaw flattens an image with qemu-img.
func qemuRaw(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(qemuRawFile(t, dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func qemuRawFile(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "flat.raw")
	run(t, dir, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", name, out)
	return out
}

// qemuExtents returns the data ranges of qemu-img map, coalesced.
func qemuExtents(t *testing.T, dir, name string) []vmdisk.Extent {
	t.Helper()
	return imgtest.DataRanges(imgtest.Map(t, "qcow2", filepath.Join(dir, name)))
}

func TestMatchesQemu(t *testing.T) {
	dir := fixtureDir(t)
	for _, name := range allFixtures {
		t.Run(name, func(t *testing.T) {
			rawPath := qemuRawFile(t, dir, name)
			want, err := os.ReadFile(rawPath)
			if err != nil {
				t.Fatal(err)
			}
			img, err := Open(filepath.Join(dir, name), vmdisk.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			imgtest.SameContent(t, img, rawPath)
			if img.Size() != int64(len(want)) {
				t.Fatalf("size %d, qemu says %d", img.Size(), len(want))
			}
			// Whole-disk read, and reads in odd-sized pieces that
			// straddle cluster and subcluster boundaries.
			got := make([]byte, img.Size())
			if n, err := img.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt: %d, %v", n, err)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("whole read differs from qemu-img convert at offset %d", i)
			}
			clear(got)
			for off, step := int64(0), int64(777_777); off < img.Size(); off += step {
				n := min(step, img.Size()-off)
				if k, err := img.ReadAt(got[off:off+n], off); k != int(n) || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d, %d): %d, %v", off, n, k, err)
				}
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("piecewise read differs from qemu-img convert at offset %d", i)
			}
			ext, err := img.Extents()
			if err != nil {
				t.Fatal(err)
			}
			imgtest.CheckExtents(t, ext, img.Size())
			if wantExt := qemuExtents(t, dir, name); !equalExtents(ext, wantExt) {
				t.Fatalf("extents\n got %v\nwant %v", ext, wantExt)
			}
			// Outside the extents the disk reads as zeros.
			pos := int64(0)
			for _, e := range append(ext, vmdisk.Extent{Offset: img.Size()}) {
				if !allZero(want[pos:e.Offset]) {
					t.Fatalf("non-zero data in hole %d..%d", pos, e.Offset)
				}
				pos = e.End()
			}
		})
	}
}

func TestInfoAndChain(t *testing.T) {
	dir := fixtureDir(t)
	img, err := vmdisk.Open(filepath.Join(dir, "top.qcow2"), "", vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	info := img.Info()
	wantFiles := []string{filepath.Join(dir, "top.qcow2"), filepath.Join(dir, "overlay.qcow2"), filepath.Join(dir, "v3.qcow2")}
	if info.Format != "qcow2" || info.Variant != "v3" || info.InUse || fmt.Sprint(info.Files) != fmt.Sprint(wantFiles) {
		t.Fatalf("info %+v", info)
	}
	if img.Size() != 32*MiB || img.SectorSize() != 512 {
		t.Fatalf("size %d sector %d", img.Size(), img.SectorSize())
	}
	k4, err := Open(filepath.Join(dir, "4k.qcow2"), vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k4.Close()
	if k4.SectorSize() != 4096 {
		t.Fatalf("4Kn disk: sector size %d", k4.SectorSize())
	}
	v2, err := Open(filepath.Join(dir, "v2.qcow2"), vmdisk.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	if v2.Info().Variant != "v2" || v2.ClusterSize() != 65536 || v2.BackingFile() != "" {
		t.Fatalf("v2 info %+v", v2.Info())
	}
	// Past the end.
	buf := make([]byte, 10)
	if n, err := img.ReadAt(buf, img.Size()); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(size) = %d, %v", n, err)
	}
	if n, err := img.ReadAt(buf, img.Size()-4); n != 4 || err != io.EOF {
		t.Fatalf("ReadAt(size-4) = %d, %v", n, err)
	}
	if _, err := img.ReadAt(buf, -1); err == nil {
		t.Fatal("negative offset accepted")
	}
}

func TestConcurrentReads(t *testing.T) {
	dir := fixtureDir(t)
	for _, name := range []string{"compressed.qcow2", "overlay.qcow2", "small-cluster.qcow2"} {
		want := qemuRaw(t, dir, name)
		img, err := Open(filepath.Join(dir, name), vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 100_003)
				for off := int64(g * 31_337); off < img.Size(); off += 8 * 100_003 {
					n, err := img.ReadAt(buf, off)
					if err != nil && err != io.EOF {
						errs <- err
						return
					}
					if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
						errs <- fmt.Errorf("%s: mismatch at %d", name, off)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		img.Close()
	}
}

// copyFixture copies a fixture into a fresh directory for mutation.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// readAll opens path, reads every byte and lists the extents, returning
// the first error.
func readAll(path string, opts vmdisk.OpenOptions) error { return imgtest.ReadAll(Open(path, opts)) }

func wantFormatError(t *testing.T, err error, path, structure string) *vmdisk.FormatError {
	t.Helper()
	var fe *vmdisk.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *vmdisk.FormatError", err)
	}
	if fe.Path != path || !strings.HasPrefix(fe.Struct, structure) || fe.Format != "qcow2" {
		t.Fatalf("got %q (struct %q, path %q), want struct %q in %s", err, fe.Struct, fe.Path, structure, path)
	}
	return fe
}

func TestBadInput(t *testing.T) {
	t.Run("truncated header", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		if err := os.Truncate(p, 50); err != nil {
			t.Fatal(err)
		}
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "header")
	})
	t.Run("truncated data", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		st, _ := os.Stat(p)
		if err := os.Truncate(p, st.Size()/2); err != nil {
			t.Fatal(err)
		}
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "L2 table")
	})
	t.Run("truncated to the tables", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		if err := os.Truncate(p, 3*65536); err != nil {
			t.Fatal(err)
		}
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "L1 table")
	})
	t.Run("L1 offset beyond EOF", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		imgtest.Patch(t, p, 40, be64(1<<40))
		fe := wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "L1 table")
		if fe.Offset != 1<<40 {
			t.Fatalf("offset %d", fe.Offset)
		}
	})
	t.Run("L1 offset unaligned", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		imgtest.Patch(t, p, 40, be64(0x30008))
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "header")
	})
	t.Run("bad cluster bits", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		imgtest.Patch(t, p, 20, []byte{0, 0, 0, 40})
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "header")
	})
	t.Run("L1 too small", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		imgtest.Patch(t, p, 24, be64(1<<50))
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "header")
	})
	t.Run("compressed cluster out of range", func(t *testing.T) {
		p := copyFixture(t, "compressed.qcow2")
		img, err := Open(p, vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l2off, x := int64(img.l1[0]), 62-(img.h.clusterBits-8)
		img.Close()
		b, _ := os.ReadFile(p)
		patched := false
		for i := int64(0); i < 8192; i++ {
			e := binary.BigEndian.Uint64(b[l2off+i*8:])
			if e&(1<<62) != 0 {
				e = e&^(1<<x-1) | uint64(len(b)+4096)
				imgtest.Patch(t, p, l2off+i*8, be64(e))
				patched = true
				break
			}
		}
		if !patched {
			t.Fatal("no compressed cluster in the fixture")
		}
		fe := wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "L2 table 0")
		if !strings.Contains(fe.Msg, "compressed cluster") {
			t.Fatalf("message %q", fe.Msg)
		}
	})
	t.Run("compressed cluster garbage", func(t *testing.T) {
		p := copyFixture(t, "compressed.qcow2")
		img, err := Open(p, vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.lookup(10 * MiB)
		img.Close()
		if err != nil || m.kind != kindCompressed {
			t.Fatalf("cluster at 10 MiB: %+v %v", m, err)
		}
		imgtest.Patch(t, p, m.host, bytes.Repeat([]byte{0xff}, int(m.csize)))
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "compressed cluster")
	})
	t.Run("data cluster beyond EOF", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		img, err := Open(p, vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l2off := int64(img.l1[0])
		img.Close()
		imgtest.Patch(t, p, l2off+16*8, be64(1<<63|1<<40)) // cluster 16 = 1 MiB
		wantFormatError(t, readAll(p, vmdisk.OpenOptions{}), p, "L2 table 0")
	})
	t.Run("backing loop", func(t *testing.T) {
		dir := t.TempDir()
		run(t, dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", "a.qcow2", "4M")
		run(t, dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2", "4M")
		_, err := vmdisk.Open(filepath.Join(dir, "a.qcow2"), "", vmdisk.OpenOptions{})
		var be *BackingError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "loop") {
			t.Fatalf("got %v, want a backing chain error", err)
		}
		t.Log(err)
		if len(err.Error()) > 400 {
			t.Fatalf("error message is %d bytes long: %s", len(err.Error()), err)
		}
	})
	t.Run("missing backing file", func(t *testing.T) {
		dir := t.TempDir()
		run(t, dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "child.qcow2", "4M")
		_, err := Open(filepath.Join(dir, "child.qcow2"), vmdisk.OpenOptions{})
		var be *BackingError
		if !errors.As(err, &be) || !errors.Is(err, fs.ErrNotExist) || be.Backing != filepath.Join(dir, "gone.qcow2") {
			t.Fatalf("got %v, want a missing backing file error", err)
		}
	})
	t.Run("encrypted", func(t *testing.T) {
		// crypt_method 2 is LUKS (qemu-img's LUKS key derivation is too
		// slow and too fussy for a unit test; the header field is what
		// decides).
		p := copyFixture(t, "v3.qcow2")
		imgtest.Patch(t, p, 32, []byte{0, 0, 0, 2})
		err := readAll(p, vmdisk.OpenOptions{Force: true})
		if !errors.Is(err, vmdisk.ErrUnsupported) || !strings.Contains(err.Error(), "encrypted qcow2 (LUKS)") {
			t.Fatalf("got %v", err)
		}
	})
	for _, tc := range []struct {
		bit  uint64
		want string
	}{
		{incompatCorrupt, "corrupt"},
		{incompatDataFile, "external data file"},
		{1 << 9, "unknown incompatible features bit 9"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			p := copyFixture(t, "v3.qcow2")
			imgtest.Patch(t, p, 72, be64(tc.bit))
			err := readAll(p, vmdisk.OpenOptions{Force: true})
			if !errors.Is(err, vmdisk.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("unknown version", func(t *testing.T) {
		p := copyFixture(t, "v3.qcow2")
		imgtest.Patch(t, p, 4, []byte{0, 0, 0, 4})
		if err := readAll(p, vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrUnsupported) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestDirtyBit(t *testing.T) {
	p := copyFixture(t, "v3.qcow2")
	imgtest.Patch(t, p, 72, be64(incompatDirty))
	if _, err := Open(p, vmdisk.OpenOptions{}); !errors.Is(err, vmdisk.ErrInUse) || !strings.Contains(err.Error(), "dirty") {
		t.Fatalf("got %v, want ErrInUse", err)
	}
	img, err := Open(p, vmdisk.OpenOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if info := img.Info(); !info.InUse || len(info.Reasons) != 1 || !strings.Contains(info.Reasons[0], "dirty") {
		t.Fatalf("info %+v", info)
	}
}

func TestQemuLock(t *testing.T) {
	p := copyFixture(t, "v3.qcow2")
	imgtest.QemuLock(t, "qcow2", p, "QEMU holds it open for writing", func(o vmdisk.OpenOptions) (vmdisk.Image, error) { return Open(p, o) })
}

func TestProbe(t *testing.T) {
	dir := fixtureDir(t)
	head := make([]byte, 512)
	f, err := os.Open(filepath.Join(dir, "v2.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(head, 0)
	f.Close()
	if !Probe(head, nil, 1<<20) {
		t.Fatal("v2 image not recognised")
	}
	raw := make([]byte, 512)
	if Probe(raw, nil, 512) || Probe(head[:4], nil, 4) {
		t.Fatal("probe accepted a non-qcow2 head")
	}
}

func firstDiff(a, b []byte) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func equalExtents(a, b []vmdisk.Extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
