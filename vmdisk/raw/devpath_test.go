package raw

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestWindowsDevicePath(t *testing.T) {
	files := fstest.MapFS{
		"disk.vhdx": {Data: []byte("x")},
		"dir":       {Mode: fs.ModeDir},
		"drive":     {Mode: fs.ModeDevice},
	}
	// stat maps a few namespace paths onto files, a directory and a
	// device; everything else does not exist.
	stat := func(path string) (fs.FileInfo, error) {
		switch path {
		case `\\?\C:\vms\disk.vhdx`, `\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3\vms\disk.vhdx`:
			return files.Stat("disk.vhdx")
		case `\\?\C:\vms`:
			return files.Stat("dir")
		case `\\.\PhysicalDrive0`:
			return files.Stat("drive")
		case `\\.\C:`:
			return nil, fs.ErrPermission
		}
		return nil, fs.ErrNotExist
	}
	for _, tc := range []struct {
		path string
		dev  bool
	}{
		{`C:\vms\disk.raw`, false},
		{`disk.raw`, false},
		{`\\server\share\disk.raw`, false},
		{`\\?\C:\vms\disk.vhdx`, false},
		{`\\?\C:\vms`, false},
		{`\\?\C:\vms\new.raw`, false},
		{`//?/C:/vms/new.raw`, false},
		{`\\?\UNC\server\share\new.raw`, false},
		{`\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy3\vms\disk.vhdx`, false},
		{`\\.\PhysicalDrive0`, true},
		{`\\.\PhysicalDrive9`, true},
		{`\\.\physicaldrive1\`, true},
		{`//./PhysicalDrive2`, true},
		{`\\.\C:`, true},
		{`\\?\Volume{0b6a3c1e-1111-2222-3333-444455556666}`, true},
	} {
		if got := isWindowsDevicePath(tc.path, stat); got != tc.dev {
			t.Errorf("isWindowsDevicePath(%q) = %v, want %v", tc.path, got, tc.dev)
		}
	}
}

func TestOnDisk(t *testing.T) {
	for _, tc := range []struct {
		from, disk string
		want       bool
	}{
		{"/dev/disk2", "disk2", true},
		{"/dev/disk2s1", "disk2", true},
		{"/dev/disk2s12", "disk2", true},
		{"/dev/rdisk2s1", "disk2", true},
		{"com.apple.os.update-ABC@/dev/disk3s1", "disk3", true},
		{"/dev/disk2s1", "disk2s1", true},
		{"/dev/disk22s1", "disk2", false},
		{"/dev/disk2s10", "disk2s1", false},
		{"/dev/disk2", "disk2s1", false},
		{"/dev/disk2s", "disk2", false},
		{"map auto_home", "disk2", false},
		{"devfs", "disk2", false},
		{"//user@server/share", "disk2", false},
	} {
		if got := onDisk(tc.from, tc.disk); got != tc.want {
			t.Errorf("onDisk(%q, %q) = %v, want %v", tc.from, tc.disk, got, tc.want)
		}
	}
}
