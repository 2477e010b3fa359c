// Package imgtest builds disk-image test fixtures with qemu-img and checks
// vmdisk readers and writers against them. It is for tests only.
//
// Tools: a test that needs qemu-img (or sfdisk, qemu-io) calls [Need]; it
// skips when the tool is missing on a developer machine and fails when the
// CI environment variable is set, so nothing skips silently in CI.
package imgtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
)

// Need returns the path of an external tool, skipping the test when it is
// missing (failing it under CI).
func Need(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed", tool)
		}
		t.Fatalf("%s not installed (required under CI)", tool)
	}
	return p
}

// NeedAll calls [Need] for each tool.
func NeedAll(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		Need(t, tool)
	}
}

// Run runs a tool and returns its standard output, failing the test with
// the combined output when it exits non-zero.
func Run(t testing.TB, tool string, args ...string) []byte {
	t.Helper()
	out, err := RunErr(t, tool, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr runs a tool and returns its combined output and exit error.
func RunErr(t testing.TB, tool string, args ...string) ([]byte, error) {
	t.Helper()
	Need(t, tool)
	cmd := exec.Command(tool, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return append(stdout.Bytes(), stderr.Bytes()...), err
	}
	return stdout.Bytes(), nil
}

// Layout of the disk GPTDisk builds: data written at these offsets (from
// the end when negative). Some are deliberately not grain or block
// aligned.
var dataRuns = []struct {
	off, n int64
	kind   string
}{
	{1 << 20, 300 << 10, "random"},
	{5<<20 + 1234, 70000, "random"},
	{9 << 20, 2 << 20, "text"},
	{12 << 20, 1 << 20, "zero"}, // allocated zeros in the raw file
	{14<<20 - 100, 200, "random"},
	{-(2<<20 + 4096), 64 << 10, "text"},
}

// GPTDisk writes a raw disk of size bytes (at least 24 MiB) at dir/name:
// a GPT with two partitions made by sfdisk, pseudo-random and text data at
// unaligned offsets, a run of explicitly written zeros, and a hole-rich
// rest. The content is deterministic.
func GPTDisk(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	if size < 24<<20 {
		t.Fatalf("GPTDisk: size %d too small", size)
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(42))
	for _, r := range dataRuns {
		off := r.off
		if off < 0 {
			off += size
		}
		buf := make([]byte, r.n)
		switch r.kind {
		case "random":
			rnd.Read(buf)
		case "text":
			line := []byte(fmt.Sprintf("bunker test disk line at %d\n", off))
			for i := range buf {
				buf[i] = line[i%len(line)]
			}
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	// The last bytes of the disk, straddling a partial final grain when
	// the size is not grain aligned.
	if _, err := f.WriteAt([]byte("END-OF-DISK-MARKER"), size-700); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sectors := size / 512
	script := fmt.Sprintf("label: gpt\nlabel-id: 0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0\nunit: sectors\nfirst-lba: 2048\n"+
		"start=2048, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"ESP\"\n"+
		"start=10240, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"root\"\n", sectors-10240-4096)
	Need(t, "sfdisk")
	cmd := exec.Command("sfdisk", "-q", path)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return path
}

// QemuImg runs qemu-img and returns its standard output.
func QemuImg(t testing.TB, args ...string) []byte {
	t.Helper()
	return Run(t, "qemu-img", args...)
}

// Convert converts src (format srcFmt) to dst (format dstFmt) with extra
// -o options, e.g. "subformat=streamOptimized".
func Convert(t testing.TB, src, srcFmt, dst, dstFmt string, options ...string) {
	t.Helper()
	args := []string{"convert", "-f", srcFmt, "-O", dstFmt}
	for _, o := range options {
		args = append(args, "-o", o)
	}
	QemuImg(t, append(args, src, dst)...)
}

// Compare fails the test unless qemu-img compare finds the guest content
// of image (format) identical to the raw file.
func Compare(t testing.TB, rawPath, format, image string) {
	t.Helper()
	out, err := RunErr(t, "qemu-img", "compare", "-f", "raw", "-F", format, rawPath, image)
	if err != nil || !bytes.Contains(out, []byte("identical")) {
		t.Fatalf("qemu-img compare %s %s: %v\n%s", rawPath, image, err, out)
	}
}

// Check fails the test unless qemu-img check finds image consistent.
func Check(t testing.TB, format, image string) {
	t.Helper()
	out, err := RunErr(t, "qemu-img", "check", "-f", format, image)
	if err != nil {
		t.Fatalf("qemu-img check %s: %v\n%s", image, err, out)
	}
}

// VirtualSize returns qemu-img's idea of an image's virtual size.
func VirtualSize(t testing.TB, format, image string) int64 {
	t.Helper()
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	out := QemuImg(t, "info", "--output=json", "-f", format, image)
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("parse qemu-img info: %v", err)
	}
	return info.VirtualSize
}

// MapEntry is one record of qemu-img map --output=json.
type MapEntry struct {
	Start   int64 `json:"start"`
	Length  int64 `json:"length"`
	Depth   int   `json:"depth"`
	Present bool  `json:"present"`
	Zero    bool  `json:"zero"`
	Data    bool  `json:"data"`
}

// Map returns qemu-img map's view of an image.
func Map(t testing.TB, format, image string) []MapEntry {
	t.Helper()
	var m []MapEntry
	if err := json.Unmarshal(QemuImg(t, "map", "--output=json", "-f", format, image), &m); err != nil {
		t.Fatalf("parse qemu-img map: %v", err)
	}
	return m
}

// DataRanges returns the coalesced ranges qemu-img map reports as data.
func DataRanges(m []MapEntry) []vmdisk.Extent {
	var out []vmdisk.Extent
	for _, e := range m {
		if !e.Data {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End() == e.Start {
			out[n-1].Length += e.Length
		} else {
			out = append(out, vmdisk.Extent{Offset: e.Start, Length: e.Length})
		}
	}
	return out
}

// CheckExtents fails unless ext is sorted, non-overlapping, coalesced and
// inside [0, size).
func CheckExtents(t testing.TB, ext []vmdisk.Extent, size int64) {
	t.Helper()
	var end int64 = -1
	for i, e := range ext {
		if e.Length <= 0 || e.Offset < 0 || e.End() > size {
			t.Fatalf("extent %d %+v invalid for size %d", i, e, size)
		}
		if e.Offset <= end {
			t.Fatalf("extent %d %+v overlaps or touches the previous one (end %d)", i, e, end)
		}
		end = e.End()
	}
}

// Covers fails unless every non-zero byte of the raw file lies inside one
// of ext.
func Covers(t testing.TB, ext []vmdisk.Extent, rawPath string) {
	t.Helper()
	data, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	coversBytes(t, ext, data)
}

// coversBytes fails unless every non-zero byte of data lies inside one of
// ext.
func coversBytes(t testing.TB, ext []vmdisk.Extent, data []byte) {
	t.Helper()
	var pos int64
	check := func(from, to int64) {
		for i := from; i < to && i < int64(len(data)); i++ {
			if data[i] != 0 {
				t.Fatalf("non-zero byte at %d outside the extents %v", i, ext)
			}
		}
	}
	for _, e := range ext {
		check(pos, e.Offset)
		pos = e.End()
	}
	check(pos, int64(len(data)))
}

// SameContent fails unless reading img gives exactly the bytes of the raw
// file, read in pieces of varied sizes and alignments by two goroutines at
// once, and unless ReadAt at and past the end behaves like a file.
func SameContent(t testing.TB, img vmdisk.Image, rawPath string) {
	t.Helper()
	want, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	size := img.Size()
	if size < int64(len(want)) {
		t.Fatalf("image size %d smaller than raw size %d", size, len(want))
	}
	sizes := [][]int{{1 << 20}, {4096, 65536 + 512, 777, 300 << 10, 512}}
	var wg sync.WaitGroup
	errs := make([]error, len(sizes))
	for g, pattern := range sizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = readAll(img, want, size, pattern)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := img.ReadAt(make([]byte, 10), size); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(size) = %d, %v; want 0, EOF", n, err)
	}
	buf := make([]byte, 1000)
	n, err := img.ReadAt(buf, size-100)
	if n != 100 || err != io.EOF {
		t.Fatalf("ReadAt across the end = %d, %v; want 100, EOF", n, err)
	}
}

func readAll(img vmdisk.Image, want []byte, size int64, pattern []int) error {
	buf := make([]byte, 1<<20+65536)
	var off int64
	for i := 0; off < size; i++ {
		n := min(int64(pattern[i%len(pattern)]), size-off)
		got, err := img.ReadAt(buf[:n], off)
		if err != nil && !(err == io.EOF && off+int64(got) == size) {
			return fmt.Errorf("ReadAt(%d, %d): %v", off, n, err)
		}
		if int64(got) != n {
			return fmt.Errorf("ReadAt(%d, %d) read %d", off, n, got)
		}
		if off+n <= int64(len(want)) && bytes.Equal(buf[:n], want[off:off+n]) {
			off += n
			continue
		}
		for j := int64(0); j < n; j++ {
			var w byte
			if off+j < int64(len(want)) {
				w = want[off+j]
			}
			if buf[j] != w {
				return fmt.Errorf("byte %d: got %#x want %#x (read of %d at %d)", off+j, buf[j], w, n, off)
			}
		}
		off += n
	}
	return nil
}

// CheckRaw fails unless img reads as the raw file ([SameContent]) and its
// extents are valid for a disk of size bytes ([CheckExtents]) and cover
// every non-zero byte of the raw file ([Covers]). It returns the extents.
func CheckRaw(t testing.TB, img vmdisk.Image, rawPath string, size int64) []vmdisk.Extent {
	t.Helper()
	SameContent(t, img, rawPath)
	ext, err := img.Extents()
	if err != nil {
		t.Fatal(err)
	}
	CheckExtents(t, ext, size)
	Covers(t, ext, rawPath)
	return ext
}

// MatchMap fails unless ext are exactly the data ranges qemu-img map
// reports for image.
func MatchMap(t testing.TB, ext []vmdisk.Extent, format, image string) {
	t.Helper()
	if want := DataRanges(Map(t, format, image)); !slices.Equal(ext, want) {
		t.Fatalf("extents %v\nqemu-img map %v", ext, want)
	}
}
