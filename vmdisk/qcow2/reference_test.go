package qcow2

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/vmdisk"
	"github.com/bunkerbackup/bunker/vmdisk/internal/imgtest"
)

// TestReferenceFixtures checks the images of make-fixtures.sh (see
// [imgtest.ReferenceFixtures]) against the raw disks of the same run.
func TestReferenceFixtures(t *testing.T) {
	dir := imgtest.ReferenceFixtures(t)
	for img, raw := range map[string]string{
		"gpt.qcow2":            "disk-gpt.raw",
		"gpt-compressed.qcow2": "disk-gpt.raw",
		"gpt-overlay.qcow2":    "expected-overlay.raw",
	} {
		want, err := os.ReadFile(filepath.Join(dir, raw))
		if err != nil {
			t.Fatal(err)
		}
		q, err := Open(filepath.Join(dir, img), vmdisk.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(q, 0, q.Size()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (%v)", img, raw, err)
		}
		q.Close()
	}
}

// BenchmarkReadAt reads a fixture in 1 MiB pieces.
func BenchmarkReadAt(b *testing.B) {
	for _, name := range []string{"v3.qcow2", "compressed.qcow2", "zstd.qcow2", "overlay.qcow2"} {
		b.Run(name, func(b *testing.B) {
			img, err := Open(filepath.Join(fixtureDir(b), name), vmdisk.OpenOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer img.Close()
			imgtest.BenchRead(b, img)
		})
	}
}
