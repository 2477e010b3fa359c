package schedule

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSystemZone(t *testing.T) {
	root := t.TempDir()
	if got := SystemZone(root); got != time.Local {
		t.Errorf("no /etc/localtime: got %v, want time.Local", got)
	}
	data, err := os.ReadFile("/usr/share/zoneinfo/Asia/Kolkata")
	if err != nil {
		t.Fatalf("tzdata: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/share/zoneinfo/Asia"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/share/zoneinfo/Asia/Kolkata"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/zoneinfo/Asia/Kolkata", filepath.Join(root, "etc/localtime")); err != nil {
		t.Fatal(err)
	}
	loc := SystemZone(root)
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, off := at.In(loc).Zone(); off != 5*3600+30*60 {
		t.Errorf("offset %d, want +05:30", off)
	}
}
