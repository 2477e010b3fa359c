package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
)

// tarDumper writes a directory of a snapshot as a tar archive (PAX format,
// so that nanosecond times, long names, owners' names and extended
// attributes survive), as restic's dump does. Hard links (files sharing an
// inode on one device) become tar link entries to the first name seen.
type tarDumper struct {
	ctx   context.Context
	r     *repo.Repository
	tw    *tar.Writer
	links map[[2]uint64]string // device, inode -> first archive name
	warn  func(p string, err error)
}

// dumpTar writes the directory node dir found at snapshot path p (the root
// when dir is nil and root is set) and everything below it to w.
func dumpTar(ctx context.Context, r *repo.Repository, p string, dir *repo.Node, root repo.ID, w io.Writer, warn func(string, error)) error {
	d := &tarDumper{ctx: ctx, r: r, tw: tar.NewWriter(w), links: map[[2]uint64]string{}, warn: warn}
	sub := root
	if dir != nil {
		if err := d.entry(p, dir); err != nil {
			return err
		}
		if dir.Subtree == nil {
			return d.tw.Close()
		}
		sub = *dir.Subtree
	}
	if err := walkTree(ctx, r, sub, p, d.entry); err != nil {
		return err
	}
	return d.tw.Close()
}

// entry writes one node as an archive entry.
func (d *tarDumper) entry(p string, n *repo.Node) error {
	name := strings.TrimPrefix(p, "/")
	hdr := &tar.Header{
		Name:       name,
		Mode:       tarMode(n.Mode),
		Uid:        int(n.UID),
		Gid:        int(n.GID),
		Uname:      n.User,
		Gname:      n.Group,
		ModTime:    n.ModTime,
		AccessTime: n.AccessTime,
		ChangeTime: n.ChangeTime,
		Format:     tar.FormatPAX,
	}
	for _, x := range n.Xattrs {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
	}
	switch n.Type {
	case repo.NodeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case repo.NodeFile:
		key := [2]uint64{n.DeviceID, n.Inode}
		if n.Links > 1 && n.Inode != 0 {
			if first, ok := d.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return d.write(hdr, nil)
			}
			d.links[key] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(n.Size)
		return d.write(hdr, n)
	case repo.NodeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.LinkTarget
	case repo.NodeFIFO:
		hdr.Typeflag = tar.TypeFifo
	case repo.NodeCharDev, repo.NodeBlockDev:
		hdr.Typeflag = tar.TypeChar
		if n.Type == repo.NodeBlockDev {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = devMajor(n.Rdev), devMinor(n.Rdev)
	default:
		d.warn(p, fmt.Errorf("a %s cannot be stored in a tar archive: left out", n.Type))
		return nil
	}
	return d.write(hdr, nil)
}

// write writes a header and, for a regular file, its content.
func (d *tarDumper) write(hdr *tar.Header, file *repo.Node) error {
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar entry %s: %w", hdr.Name, err)
	}
	if file == nil || hdr.Size == 0 {
		return nil
	}
	return restore.Dump(d.ctx, d.r, file, d.tw)
}

// tarMode converts a Go file mode to the mode bits of a tar header.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// devMajor and devMinor decode a Linux device number (st_rdev).
func devMajor(rdev uint64) int64 { return int64((rdev>>8)&0xfff | (rdev>>32)&^0xfff) }
func devMinor(rdev uint64) int64 { return int64(rdev&0xff | (rdev>>12)&^0xff) }
