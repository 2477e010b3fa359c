package local

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

func TestDescribeFullAndReadOnly(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.ENOSPC, "no space left on device"},
		{syscall.EROFS, "read-only file system"},
		{syscall.EDQUOT, "disk quota exceeded"},
	} {
		path := "/repo/data/ab/abcd"
		err := describe("save", path, &fs.PathError{Op: "write", Path: "/repo/data/ab/.tmp-abcd-1", Err: tc.errno})
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) || !errors.Is(err, tc.errno) {
			t.Errorf("describe(%v) = %v", tc.errno, err)
		}
	}
}
