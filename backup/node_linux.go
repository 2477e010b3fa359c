package backup

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
	"time"

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
		n.UID, n.GID = st.Uid, st.Gid
		n.ModTime = time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
		if n.Type == repo.NodeFile {
			// Listing a directory or reading a link updates its atime, so
			// recording it would change every tree on every backup. Files
			// are read with O_NOATIME.
			n.AccessTime = time.Unix(st.Atim.Sec, st.Atim.Nsec)
		}
		n.ChangeTime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		n.Inode = st.Ino
		n.DeviceID = st.Dev
		n.Links = uint64(st.Nlink)
		if n.Type == repo.NodeCharDev || n.Type == repo.NodeBlockDev {
			n.Rdev = st.Rdev
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
// when the process may do so.
func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOATIME|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	}
	return f, err
}

// dataRanges returns the data ranges of a sparse file of the given size
// (SEEK_DATA/SEEK_HOLE), or nil, false when the file is not sparse or the
// file system cannot tell.
func dataRanges(f *os.File, fi fs.FileInfo) ([][2]int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	size := fi.Size()
	if !ok || size == 0 || st.Blocks*512 >= size {
		return nil, false
	}
	fd := int(f.Fd())
	var out [][2]int64
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, false
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, false
		}
		hole = min(hole, size)
		if data >= hole {
			break
		}
		out = append(out, [2]int64{data, hole})
		off = hole
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, false
	}
	return out, true
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
		return st.Dev
	}
	return 0
}

// inodeOf returns the inode number of fi.
func inodeOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
