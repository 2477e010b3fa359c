package check

import (
	"context"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/repo"
)

// BlobStats counts blobs and their sizes.
type BlobStats struct {
	DataBlobs   uint64 `json:"data_blobs"`
	TreeBlobs   uint64 `json:"tree_blobs"`
	PlainBytes  uint64 `json:"plain_bytes"`  // plaintext size
	StoredBytes uint64 `json:"stored_bytes"` // after compression and encryption
	Compressed  uint64 `json:"compressed_blobs"`
}

func (s *BlobStats) add(pb repo.PackedBlob) {
	if pb.Type == repo.DataBlob {
		s.DataBlobs++
	} else {
		s.TreeBlobs++
	}
	s.PlainBytes += uint64(pb.PlainLength)
	s.StoredBytes += uint64(pb.Length)
	if pb.Compressed {
		s.Compressed++
	}
}

// SnapshotStats are the figures of one snapshot.
type SnapshotStats struct {
	ID        repo.ID   `json:"id"`
	Time      time.Time `json:"time"` // the snapshot's time
	Files     uint64    `json:"files"`
	Dirs      uint64    `json:"dirs"`
	Disks     int       `json:"disks"`
	FileBytes uint64    `json:"file_bytes"` // logical size of the files (holes included)
	DiskBytes uint64    `json:"disk_bytes"` // virtual size of the disks
	// LogicalBytes is what a full restore writes: FileBytes + DiskBytes.
	LogicalBytes uint64 `json:"logical_bytes"`
}

// Stats describes a set of snapshots and the repository.
type Stats struct {
	Snapshots []SnapshotStats `json:"snapshots"`
	// LogicalBytes sums the snapshots' logical sizes.
	LogicalBytes uint64 `json:"logical_bytes"`
	// Referenced counts the distinct blobs the snapshots use (each once):
	// what these snapshots occupy after deduplication.
	Referenced BlobStats `json:"referenced"`
	// Repository counts every indexed blob.
	Repository BlobStats `json:"repository"`
	Packs      int       `json:"packs"`
	PackBytes  uint64    `json:"pack_bytes"`
}

// ComputeStats walks the trees and chunk lists of sns. Trees shared between
// snapshots are read once per snapshot for the per-snapshot figures; blob
// figures count each blob once.
func ComputeStats(ctx context.Context, r *repo.Repository, sns []*repo.Snapshot) (*Stats, error) {
	st := &Stats{}
	packs, err := r.ListPacks(ctx)
	if err != nil {
		return nil, err
	}
	st.Packs = len(packs)
	for _, n := range packs {
		st.PackBytes += uint64(n)
	}
	_ = r.EachBlob(func(pb repo.PackedBlob) error {
		st.Repository.add(pb)
		return nil
	})
	seen := map[repo.BlobType]map[repo.ID]bool{repo.DataBlob: {}, repo.TreeBlob: {}}
	use := func(t repo.BlobType, id repo.ID) {
		if seen[t][id] {
			return
		}
		seen[t][id] = true
		if locs := r.LookupBlob(t, id); len(locs) > 0 {
			st.Referenced.add(locs[0])
		}
	}
	// Per-tree figures are memoised: a tree's files, dirs and bytes do not
	// depend on the snapshot.
	type treeFig struct{ files, dirs, bytes uint64 }
	memo := make(map[repo.ID]treeFig)
	var walk func(id repo.ID) (treeFig, error)
	walk = func(id repo.ID) (treeFig, error) {
		if f, ok := memo[id]; ok {
			return f, nil
		}
		use(repo.TreeBlob, id)
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return treeFig{}, err
		}
		var f treeFig
		for _, n := range t.Nodes {
			switch n.Type {
			case repo.NodeFile:
				f.files++
				f.bytes += n.Size
				for _, c := range n.Content {
					if c.ID != nil {
						use(repo.DataBlob, *c.ID)
					}
				}
			case repo.NodeDir:
				f.dirs++
				if n.Subtree != nil {
					sf, err := walk(*n.Subtree)
					if err != nil {
						return treeFig{}, err
					}
					f.files += sf.files
					f.dirs += sf.dirs
					f.bytes += sf.bytes
				}
			}
		}
		memo[id] = f
		return f, nil
	}
	for _, sn := range sns {
		ss := SnapshotStats{ID: sn.ID, Time: sn.Time, Disks: len(sn.Disks)}
		if sn.Tree != nil {
			f, err := walk(*sn.Tree)
			if err != nil {
				return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
			}
			ss.Files, ss.Dirs, ss.FileBytes = f.files, f.dirs, f.bytes
		}
		for _, d := range sn.Disks {
			ss.DiskBytes += uint64(d.Size)
			for _, lid := range d.ChunkLists {
				if seen[repo.TreeBlob][lid] {
					continue
				}
				use(repo.TreeBlob, lid)
				err := r.LoadChunkList(ctx, []repo.ID{lid}, func(c repo.DiskChunk) error {
					use(repo.DataBlob, c.ID)
					return nil
				})
				if err != nil {
					return nil, fmt.Errorf("snapshot %s disk %s: %w", sn.ID.Str(), d.Name, err)
				}
			}
		}
		ss.LogicalBytes = ss.FileBytes + ss.DiskBytes
		st.LogicalBytes += ss.LogicalBytes
		st.Snapshots = append(st.Snapshots, ss)
	}
	return st, nil
}
