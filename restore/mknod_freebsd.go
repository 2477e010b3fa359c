package restore

import "golang.org/x/sys/unix"

func mknodDev(path string, mode uint32, rdev uint64) error { return unix.Mknod(path, mode, rdev) }
