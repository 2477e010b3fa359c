package drill

import (
	"context"
	"fmt"

	"github.com/dustin/go-humanize"

	"github.com/bunkerbackup/bunker/repo"
)

// SpaceError is returned by Run when the scratch file system has less free
// space than the drill needs. Nothing has been written then.
type SpaceError struct {
	Dir  string // the scratch directory
	Need int64  // bytes the drill needs
	Free int64  // bytes available
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("scratch directory %s has %s free, the drill needs %s",
		e.Dir, humanize.IBytes(uint64(e.Free)), humanize.IBytes(uint64(e.Need)))
}

// fsBlock is the allocation unit assumed for files written to the scratch
// file system: every file, and every run of data in a sparse file, may
// start and end in a partly used block.
const fsBlock = 4096

// rawDiskSpace is what a sparse raw copy of d allocates at most: its data
// bytes plus a partly used block at each end of every chunk.
func rawDiskSpace(d *repo.Disk) int64 {
	return d.DataBytes + int64(d.Chunks)*2*fsBlock + fsBlock
}

// containerSpace is what the container of the given format allocates for
// d at most: every block (VHD) or grain (VMDK) that holds data, plus the
// tables. It reads the disk's chunk list.
func containerSpace(ctx context.Context, r Repo, d *repo.Disk, format string) (int64, error) {
	var block, perBlock, tables int64
	switch format {
	case "vhd":
		block = 2 << 20
		perBlock = block + 512 // the block's sector bitmap
		tables = (d.Size+block-1)/block*4 + 1<<20
	case "vmdk":
		block = 64 << 10
		perBlock = block
		tables = 2*((d.Size+block-1)/block*4) + 1<<20 // grain tables and their redundant copy
	default:
		return 0, nil
	}
	var blocks int64
	last := int64(-1)
	err := r.LoadChunkList(ctx, d.ChunkLists, func(c repo.DiskChunk) error {
		first, end := int64(c.Offset)/block, (int64(c.Offset)+int64(c.Length)-1)/block
		if first <= last {
			first = last + 1
		}
		if end >= first {
			blocks += end - first + 1
			last = end
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the chunk list of disk %s: %w", d.Name, err)
	}
	return blocks*perBlock + tables, nil
}

// treeSpace walks a file tree and returns what restoring it allocates at
// most (data bytes rounded up per chunk and file, a block per directory
// and link), the number of regular files and their data bytes.
func treeSpace(ctx context.Context, r Repo, id repo.ID) (space int64, files uint64, data int64, err error) {
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("load tree %s: %w", id.Str(), err)
	}
	space = fsBlock
	for _, n := range t.Nodes {
		switch {
		case n.Type == repo.NodeDir && n.Subtree != nil:
			s, f, d, err := treeSpace(ctx, r, *n.Subtree)
			if err != nil {
				return 0, 0, 0, err
			}
			space, files, data = space+s, files+f, data+d
		case n.Type == repo.NodeFile:
			files++
			space += fsBlock
			for _, c := range n.Content {
				if c.ID != nil {
					data += int64(c.Len)
					space += int64(c.Len) + fsBlock
				}
			}
		default:
			space += fsBlock
		}
	}
	return space, files, data, nil
}
