package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/restore"
	"github.com/bunkerbackup/bunker/vmdisk/fsread"
	"github.com/bunkerbackup/bunker/vmdisk/part"
)

// diskSpec is "NAME", "NAME:pN" or "NAME:pN/PATH" (the text after "disk:"):
// a disk, a partition, or a file in the partition's file system.
type diskSpec struct {
	name string
	part int    // 0: the whole disk
	path string // "" unless a path inside the partition was given
}

func parseDiskSpec(s string) (diskSpec, error) {
	var d diskSpec
	rest, p, hasPath := strings.Cut(s, "/")
	name, pn, hasPart := strings.Cut(rest, ":")
	d.name = name
	if d.name == "" {
		return d, usageErrorf("bad disk %q: want disk:NAME, disk:NAME:pN or disk:NAME:pN/PATH", "disk:"+s)
	}
	if hasPart {
		n, err := parsePartition(pn)
		if err != nil {
			return d, err
		}
		d.part = n
	}
	if hasPath {
		if !hasPart {
			return d, usageErrorf("bad disk %q: a path needs a partition, as in disk:%s:p1/%s", "disk:"+s, name, p)
		}
		d.path = path.Clean("/" + p)
	}
	return d, nil
}

// openPartitionFS opens the file system in partition n of disk d read-only.
func openPartitionFS(ctx context.Context, r *repo.Repository, d *repo.Disk, n int) (*fsread.FS, error) {
	t, err := readTable(ctx, r, d)
	if err != nil {
		return nil, err
	}
	for _, p := range t.Partitions {
		if p.Number != n {
			continue
		}
		if !fsread.Supported(p.Filesystem) {
			return nil, fmt.Errorf("partition %d of disk %s holds %q, which bunker cannot read files from (it reads %s)",
				n, d.Name, p.Filesystem, strings.Join(fsread.Types(), ", "))
		}
		f, err := fsread.Open(partSection(restore.DiskReader(ctx, r, d), p), p.Size, p.Filesystem)
		if err != nil {
			return nil, fmt.Errorf("disk %s partition %d: %w", d.Name, n, err)
		}
		return f, nil
	}
	_, _, err = partitionRange(ctx, r, d, n) // the error naming the partitions
	return nil, err
}

func partSection(r io.ReaderAt, p part.Partition) io.ReaderAt { return p.Section(r) }

// fsRel turns "/etc/fstab" into the io/fs name "etc/fstab" ("." for /).
func fsRel(p string) string {
	if p = strings.Trim(p, "/"); p == "" {
		return "."
	}
	return p
}

// collectFSNodes lists the file system below p (p itself first).
func collectFSNodes(fsys *fsread.FS, p string, out *[]nodeJSON) error {
	return fs.WalkDir(fsys, fsRel(p), func(name string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := fsys.Lstat(name)
		if err != nil {
			return err
		}
		n := &repo.Node{Type: nodeType(fi.Mode()), Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
			Size: uint64(max(fi.Size(), 0)), ModTime: fi.ModTime()}
		if n.Type == repo.NodeSymlink {
			n.LinkTarget, _ = fsys.ReadLink(name)
		}
		if n.Type == repo.NodeDir {
			n.Size = 0
		}
		*out = append(*out, toNodeJSON(path.Join("/", name), n))
		return nil
	})
}

func nodeType(m fs.FileMode) repo.NodeType {
	switch {
	case m.IsDir():
		return repo.NodeDir
	case m&fs.ModeSymlink != 0:
		return repo.NodeSymlink
	case m&fs.ModeNamedPipe != 0:
		return repo.NodeFIFO
	case m&fs.ModeCharDevice != 0:
		return repo.NodeCharDev
	case m&fs.ModeDevice != 0:
		return repo.NodeBlockDev
	case m&fs.ModeSocket != 0:
		return repo.NodeSocket
	}
	return repo.NodeFile
}

// dumpFSFile writes the regular file p of the file system.
func dumpFSFile(fsys *fsread.FS, p string, w io.Writer) error {
	f, err := fsys.Open(fsRel(p))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return usageErrorf("%s is not a regular file (%s)", p, fi.Mode().Type())
	}
	_, err = io.Copy(w, f)
	return err
}
