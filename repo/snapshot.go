package repo

import "time"

// Snapshot is the record of one backup run: a file tree, disks, or both.
// It is stored as an encrypted JSON file in snapshots/ (see docs/design.md).
type Snapshot struct {
	Time           time.Time `json:"time"`
	Tree           *ID       `json:"tree,omitempty"` // root tree of a file backup; nil for a disk-only snapshot
	Paths          []string  `json:"paths"`          // absolute source paths (files) or disk sources
	Hostname       string    `json:"hostname"`
	Username       string    `json:"username,omitempty"`
	UID            uint32    `json:"uid"`
	GID            uint32    `json:"gid"`
	Tags           []string  `json:"tags,omitempty"`
	Parent         *ID       `json:"parent,omitempty"`
	Excludes       []string  `json:"excludes,omitempty"`
	ProgramVersion string    `json:"program_version,omitempty"`
	Job            string    `json:"job,omitempty"`
	Original       *ID       `json:"original,omitempty"` // the snapshot this one is a repaired copy of

	// Incomplete is set when some sources could not be read; Warnings names them.
	Incomplete bool     `json:"incomplete,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`

	Disks   []Disk           `json:"disks,omitempty"`
	Summary *SnapshotSummary `json:"summary,omitempty"`

	// ID is the snapshot file's id; it is not stored, it is set on load and save.
	ID ID `json:"-"`
}

// SnapshotSummary holds the figures of the backup run that wrote the snapshot.
type SnapshotSummary struct {
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	FilesNew            uint64    `json:"files_new"`
	FilesChanged        uint64    `json:"files_changed"`
	FilesUnmodified     uint64    `json:"files_unmodified"`
	DirsNew             uint64    `json:"dirs_new"`
	DirsChanged         uint64    `json:"dirs_changed"`
	DirsUnmodified      uint64    `json:"dirs_unmodified"`
	DataBlobs           uint64    `json:"data_blobs"`
	TreeBlobs           uint64    `json:"tree_blobs"`
	DataAdded           uint64    `json:"data_added"`        // plaintext bytes of new blobs
	DataAddedPacked     uint64    `json:"data_added_packed"` // bytes after compression and encryption
	TotalFilesProcessed uint64    `json:"total_files_processed"`
	TotalBytesProcessed uint64    `json:"total_bytes_processed"`
}

// Disk is a disk image or block device in a snapshot: its guest-visible
// content, independent of the container format it was read from.
//
// The content is the chunk list: DiskChunk entries sorted by offset,
// non-overlapping, stored in TreeBlobs listed in ChunkLists. Every byte not
// covered by an entry is zero (a hole): the chunk list is the disk's extent
// map of data and holes.
type Disk struct {
	Name       string `json:"name"`
	Source     string `json:"source"`      // the path it was read from
	Format     string `json:"format"`      // source container format: raw, device, vmdk, vhd, vhdx, qcow2
	Size       int64  `json:"size"`        // virtual size in bytes
	SectorSize int    `json:"sector_size"` // logical sector size in bytes
	Digest     string `json:"digest"`      // unkeyed BLAKE3-256 of the whole guest-visible content, hex
	ChunkLists []ID   `json:"chunk_lists"`
	Chunks     uint64 `json:"chunks"`     // number of DiskChunk entries
	DataBytes  int64  `json:"data_bytes"` // bytes covered by chunks (not holes)

	// Source identity, used to skip re-reading an unchanged image file.
	SourceSize  int64     `json:"source_size,omitempty"`
	SourceMtime time.Time `json:"source_mtime,omitzero"`
	SourceInode uint64    `json:"source_inode,omitempty"`

	// CrashConsistent is set when the image was open for writing (or had a
	// dirty flag) and was read anyway with --force.
	CrashConsistent bool `json:"crash_consistent,omitempty"`
	// ChangedDuringRead is set when the source's size or mtime changed while
	// it was read.
	ChangedDuringRead bool `json:"changed_during_read,omitempty"`
}

// DiskChunk is one entry of a disk's chunk list: Length bytes at Offset of
// the guest-visible disk are the data blob ID.
type DiskChunk struct {
	Offset uint64
	Length uint32
	ID     ID
}
