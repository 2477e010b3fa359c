package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/bunkerbackup/bunker/repo"
)

// nodeJSON is one entry of 'ls --json'. PathB64 is set (and Path lossy)
// when the path is not valid UTF-8.
type nodeJSON struct {
	Path       string    `json:"path"`
	PathB64    []byte    `json:"path_b64,omitempty"`
	Type       string    `json:"type"`
	Mode       string    `json:"mode"`
	Size       uint64    `json:"size"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	User       string    `json:"user,omitempty"`
	Group      string    `json:"group,omitempty"`
	ModTime    time.Time `json:"mtime"`
	LinkTarget string    `json:"link_target,omitempty"`
}

type lsJSON struct {
	Snapshot snapshotJSON `json:"snapshot"`
	Nodes    []nodeJSON   `json:"nodes"`
	Disks    []diskJSON   `json:"disks,omitempty"`
}

func newLsCmd(g *globalOptions) *cobra.Command {
	var (
		filter snapshotFilter
		format lsFormat
	)
	cmd := &cobra.Command{
		Use:   "ls SNAP [PATH | disk:NAME:pN[/PATH]]",
		Short: "List the files or disks of a snapshot",
		Long: `List the files of a snapshot: PATH (default /) and everything below it, as
restic's ls --recursive does. --long adds mode, owner, size (in bytes, or
with --human-readable in KiB, MiB...) and modification time. Names that are
not printable UTF-8 are shown quoted. For a disk snapshot,
list its disks and their partitions; disk:NAME:pN[/PATH] lists the files of
the file system in a partition (ext2/3/4, FAT, NTFS, XFS) without mounting it.` + repoExitStatus(),
		Example: `  bunker ls latest
  bunker ls -l 4f3c2a1b /home/ann
  bunker ls -l --human-readable latest /var/log
  bunker ls latest --json | jq -r '.nodes[].path'
  bunker ls -l latest disk:vm1:p1/etc`,
		Args: rangeArgs(1, 2, "a snapshot and optionally a path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return g.withRepo(ctx, sharedLock, func(r *repo.Repository) error {
				sn, err := findSnapshot(ctx, r, args[0], filter)
				if err != nil {
					return err
				}
				prot, err := loadProtected(ctx, r)
				if err != nil {
					return err
				}
				if len(args) == 2 && strings.HasPrefix(args[1], "disk:") {
					return g.lsDiskFS(ctx, r, sn, prot, strings.TrimPrefix(args[1], "disk:"), format)
				}
				start := "/"
				if len(args) == 2 {
					start = path.Clean("/" + args[1])
				}
				doc := lsJSON{Snapshot: toSnapshotJSON(sn, prot), Nodes: []nodeJSON{}}
				if sn.Tree != nil {
					if err := collectNodes(ctx, r, sn, start, &doc.Nodes); err != nil {
						return err
					}
				} else if len(args) == 2 {
					return fmt.Errorf("snapshot %s holds no files, only disks", sn.ID.Str())
				}
				if len(args) == 1 {
					if doc.Disks, err = describeDisks(ctx, r, sn); err != nil {
						return err
					}
				}
				return g.out.document(doc, func(w io.Writer) error { return printLs(w, doc, format) })
			})
		},
	}
	filter.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&format.long, "long", "l", false, "show mode, owner, size and mtime")
	cmd.Flags().BoolVar(&format.human, "human-readable", false, "with --long: sizes as 1.5 MiB rather than bytes")
	return cmd
}

// lsDiskFS lists the files of a partition's file system.
func (g *globalOptions) lsDiskFS(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, prot protectedSet, spec string, format lsFormat) error {
	ds, err := parseDiskSpec(spec)
	if err != nil {
		return err
	}
	if ds.part == 0 {
		return usageErrorf("ls disk:%s: name a partition, as in disk:%s:p1 (see 'bunker volumes')", spec, ds.name)
	}
	d, err := findDisk(sn, ds.name)
	if err != nil {
		return err
	}
	fsys, err := openPartitionFS(ctx, r, d, ds.part)
	if err != nil {
		return err
	}
	doc := lsJSON{Snapshot: toSnapshotJSON(sn, prot), Nodes: []nodeJSON{}}
	if err := collectFSNodes(fsys, orDefault(ds.path, "/"), &doc.Nodes); err != nil {
		return fmt.Errorf("disk %s partition %d: %w", d.Name, ds.part, err)
	}
	return g.out.document(doc, func(w io.Writer) error { return printLs(w, doc, format) })
}

func collectNodes(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, start string, out *[]nodeJSON) error {
	add := func(p string, n *repo.Node) error {
		*out = append(*out, toNodeJSON(p, n))
		return nil
	}
	if start == "/" {
		return walkTree(ctx, r, *sn.Tree, "/", add)
	}
	n, err := lookupPath(ctx, r, sn, start)
	if err != nil {
		return err
	}
	add(start, n)
	if n.Type == repo.NodeDir && n.Subtree != nil {
		return walkTree(ctx, r, *n.Subtree, start, add)
	}
	return nil
}

func toNodeJSON(p string, n *repo.Node) nodeJSON {
	j := nodeJSON{Path: p, Type: string(n.Type), Mode: modeString(n), Size: n.Size, UID: n.UID, GID: n.GID,
		User: n.User, Group: n.Group, ModTime: n.ModTime, LinkTarget: n.LinkTarget}
	if !utf8.ValidString(p) {
		j.PathB64 = []byte(p)
	}
	return j
}

// modeString formats a node's type and permissions as ls -l does
// ("drwxr-xr-x", "-rwsr-xr-x", "drwxrwxrwt").
func modeString(n *repo.Node) string {
	types := map[repo.NodeType]byte{repo.NodeDir: 'd', repo.NodeSymlink: 'l', repo.NodeFIFO: 'p',
		repo.NodeCharDev: 'c', repo.NodeBlockDev: 'b', repo.NodeSocket: 's'}
	b := []byte("----------")
	if t, ok := types[n.Type]; ok {
		b[0] = t
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if n.Mode&(1<<uint(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(pos int, set bool, lower, upper byte) {
		if set {
			if b[pos] == '-' {
				b[pos] = upper
			} else {
				b[pos] = lower
			}
		}
	}
	special(3, n.Mode&fs.ModeSetuid != 0, 's', 'S')
	special(6, n.Mode&fs.ModeSetgid != 0, 's', 'S')
	special(9, n.Mode&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}

// lsFormat is how ls prints files: names only, or --long with sizes in
// bytes or (--human-readable) in KiB, MiB...
type lsFormat struct{ long, human bool }

func printLs(w io.Writer, doc lsJSON, format lsFormat) error {
	if !format.long {
		for _, n := range doc.Nodes {
			fmt.Fprintln(w, displayPath(n.Path))
		}
	} else {
		var rows [][]string
		for _, n := range doc.Nodes {
			name := displayPath(n.Path)
			if n.LinkTarget != "" {
				name += " -> " + displayPath(n.LinkTarget)
			}
			size := fmt.Sprint(n.Size)
			if format.human {
				size = humanize.IBytes(n.Size)
			}
			rows = append(rows, []string{n.Mode, orDefault(n.User, fmt.Sprint(n.UID)), orDefault(n.Group, fmt.Sprint(n.GID)),
				size, n.ModTime.Local().Format(timeFormat), name})
		}
		if len(rows) > 0 {
			if err := table(w, []string{"Mode", "User", "Group", "Size", "Modified", "Path"}, rows); err != nil {
				return err
			}
		}
	}
	return printDiskTables(w, doc.Disks, len(doc.Nodes) > 0)
}

// printDiskTables lists disks, then their partitions, as two tables
// (after a blank line when something was printed before).
func printDiskTables(w io.Writer, disks []diskJSON, after bool) error {
	if len(disks) == 0 {
		return nil
	}
	if after {
		fmt.Fprintln(w)
	}
	header := []string{"Disk", "Format", "Size", "Data", "Source"}
	var rows, parts [][]string
	notes := false
	for _, d := range disks {
		var note []string
		if d.CrashConsistent {
			note = append(note, "crash-consistent (read while in use)")
		}
		if d.ChangedDuringRead {
			note = append(note, "changed while read")
		}
		notes = notes || len(note) > 0
		rows = append(rows, []string{"disk:" + d.Name, d.Format, humanize.IBytes(uint64(d.Size)), humanize.IBytes(uint64(d.DataBytes)),
			displayPath(d.Source), strings.Join(note, ", ")})
		for _, p := range d.Partitions {
			parts = append(parts, []string{fmt.Sprintf("disk:%s:p%d", d.Name, p.Number), fmt.Sprint(p.Start), humanize.IBytes(uint64(p.Size)),
				orDefault(p.Type, "-"), orDefault(p.Filesystem, "-")})
		}
	}
	if notes {
		header = append(header, "Notes")
	} else {
		for i := range rows {
			rows[i] = rows[i][:len(header)]
		}
	}
	if err := table(w, header, rows); err != nil {
		return err
	}
	if len(parts) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	return table(w, []string{"Partition", "Start", "Size", "Type", "Filesystem"}, parts)
}
