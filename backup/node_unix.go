//go:build darwin || freebsd || linux || netbsd

package backup

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"

	"github.com/pkg/xattr"
	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/repo"
)

// nodeFromInfo builds the node of the file at full from its lstat result.
// Errors reading the link target or xattrs are returned with the node
// (which is still usable).
func (w *walker) nodeFromInfo(name, full string, fi fs.FileInfo) (*repo.Node, error) {
	n := portableNode(name, fi)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		atime, mtime, ctime := statTimes(st)
		n.UID, n.GID = st.Uid, st.Gid
		n.ModTime = mtime
		if n.Type == repo.NodeFile {
			// Listing a directory or reading a link updates its atime, so
			// recording it would change every tree on every backup. Files
			// are read with O_NOATIME where the system has it.
			n.AccessTime = atime
		}
		n.ChangeTime = ctime
		n.Inode = uint64(st.Ino)
		n.DeviceID = uint64(st.Dev)
		n.Links = uint64(st.Nlink)
		if n.Type == repo.NodeCharDev || n.Type == repo.NodeBlockDev {
			n.Rdev = uint64(st.Rdev)
		}
		n.User = w.userName(st.Uid)
		n.Group = w.groupName(st.Gid)
	}
	var errs []error
	if n.Type == repo.NodeSymlink {
		target, err := os.Readlink(full)
		if err != nil {
			errs = append(errs, err)
		}
		n.LinkTarget = target
	}
	if n.Type != repo.NodeSocket {
		xa, err := readXattrs(full)
		if err != nil {
			errs = append(errs, err)
		}
		n.Xattrs = xa
	}
	return n, errors.Join(errs...)
}

func (w *walker) userName(uid uint32) string {
	if s, ok := w.users[uid]; ok {
		return s
	}
	var name string
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		name = u.Username
	}
	w.users[uid] = name
	return name
}

func (w *walker) groupName(gid uint32) string {
	if s, ok := w.groups[gid]; ok {
		return s
	}
	var name string
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		name = g.Name
	}
	w.groups[gid] = name
	return name
}

// readXattrs returns the extended attributes of path (not following
// symlinks) sorted by name. A file system without xattrs gives none.
func readXattrs(path string) ([]repo.Xattr, error) {
	names, err := xattr.LList(path)
	if err != nil {
		if xattrUnsupported(err) {
			return nil, nil
		}
		return nil, err
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names)
	out := make([]repo.Xattr, 0, len(names))
	var errs []error
	for _, name := range names {
		v, err := xattr.LGet(path, name)
		if err != nil {
			if xattrUnsupported(err) || errors.Is(err, xattr.ENOATTR) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, repo.Xattr{Name: name, Value: v})
	}
	return out, errors.Join(errs...)
}

func xattrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

// openFile opens a regular file for reading without updating its atime
// when the system and the process's permissions allow it.
func openFile(path string) (*os.File, error) {
	const flags = os.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK
	f, err := os.OpenFile(path, flags|oNoatime, 0)
	if oNoatime != 0 && errors.Is(err, unix.EPERM) {
		f, err = os.OpenFile(path, flags, 0)
	}
	return f, err
}

// sameFile reports whether an open file is still the file that was listed.
func sameFile(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return os.SameFile(a, b)
	}
	return sa.Ino == sb.Ino && sa.Dev == sb.Dev
}

// deviceOf returns the st_dev of fi.
func deviceOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// inodeOf returns the inode number of fi.
func inodeOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
