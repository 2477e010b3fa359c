package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bunkerbackup/bunker/chunk"
	"github.com/bunkerbackup/bunker/repo"
)

// Test hooks: how many regular files were opened and how many of their
// bytes were read, over the life of the process.
var (
	filesOpened atomic.Uint64
	bytesRead   atomic.Uint64
)

// openForRead opens a file to back it up; tests replace it to inject faults.
var openForRead = openFile

// readBufSize is the size of one read from a file or disk.
const readBufSize = 1 << 20

// walker is the state of the file part of a backup.
type walker struct {
	*run
	excl    excluder
	fileJob chan *fileState
	readers sync.WaitGroup
	pool    *chunk.Pool

	users  map[uint32]string
	groups map[uint32]string
	// links maps the (device, inode) of files with several hard links to
	// the first one read in this backup: the others take its content.
	links map[[2]uint64]*fileState

	filesNew, filesChanged, filesUnmodified atomic.Uint64
	dirsNew, dirsChanged, dirsUnmodified    atomic.Uint64
	filesTotal, bytesTotal                  atomic.Uint64
}

// sel is the tree of selected source paths.
type sel struct {
	children map[string]*sel
	leaf     bool // the whole subtree is backed up
}

// files backs up paths (absolute and clean) and returns the root tree.
func (b *run) files(paths []string) (*repo.ID, error) {
	excl, err := b.opts.excluder()
	if err != nil {
		return nil, err
	}
	n := runtime.GOMAXPROCS(0)
	w := &walker{
		run:     b,
		excl:    excl,
		fileJob: make(chan *fileState, 2*n),
		pool:    chunk.NewPool(4*n, chunkBufSize(b.fileParams)),
		users:   map[uint32]string{},
		groups:  map[uint32]string{},
		links:   map[[2]uint64]*fileState{},
	}
	readers := make([]*fileReader, n)
	for i := range readers {
		split, err := chunk.NewSplitter(b.pol, b.fileParams, w.pool)
		if err != nil {
			return nil, err
		}
		rd := &fileReader{w: w, buf: make([]byte, readBufSize)}
		rd.seg = chunk.NewSegmenter(split, rd.emit)
		readers[i] = rd
	}
	for _, rd := range readers {
		w.readers.Add(1)
		go rd.loop()
	}

	root := &sel{}
	for _, p := range paths {
		s := root
		for _, c := range splitPath(filepath.ToSlash(p)) {
			if s.leaf {
				break
			}
			if s.children == nil {
				s.children = map[string]*sel{}
			}
			next := s.children[c]
			if next == nil {
				next = &sel{}
				s.children[c] = next
			}
			s = next
		}
		s.leaf = true
		s.children = nil
	}

	var oldRoot *repo.ID
	if p := b.opts.Parent; p != nil {
		oldRoot = p.Tree
	}
	rootDir := w.newDir(nil, nil, "/", oldRoot)
	rootDir.done = make(chan struct{})
	var walkErr error
	if root.leaf {
		fi, err := os.Lstat("/")
		if err != nil {
			walkErr = fmt.Errorf("backup: %w", err)
		} else {
			w.walkDir(rootDir, "/", deviceOf(fi))
		}
	} else {
		var found int
		found, walkErr = w.walkSelected(rootDir, "/", root)
		if walkErr == nil && found == 0 {
			walkErr = errors.New("backup: none of the source paths could be read")
		}
	}
	rootDir.childDone()
	close(w.fileJob)
	w.readers.Wait()
	<-rootDir.done

	s := &b.sum
	s.FilesNew = w.filesNew.Load()
	s.FilesChanged = w.filesChanged.Load()
	s.FilesUnmodified = w.filesUnmodified.Load()
	s.DirsNew = w.dirsNew.Load()
	s.DirsChanged = w.dirsChanged.Load()
	s.DirsUnmodified = w.dirsUnmodified.Load()
	s.TotalFilesProcessed = w.filesTotal.Load()
	s.TotalBytesProcessed = w.bytesTotal.Load()
	if walkErr != nil {
		return nil, walkErr
	}
	if err := b.err(); err != nil {
		return nil, err
	}
	if b.opts.DryRun {
		return nil, nil
	}
	id := rootDir.id
	return &id, nil
}

// walkSelected adds the selected entries below the directory dir (a path
// prefix of some source paths) and returns how many source paths it found.
func (w *walker) walkSelected(d *dirState, dir string, s *sel) (int, error) {
	names := make([]string, 0, len(s.children))
	for name := range s.children {
		names = append(names, name)
	}
	slices.Sort(names)
	found := 0
	for _, name := range names {
		if w.ctx.Err() != nil {
			return found, w.err()
		}
		child := s.children[name]
		full := filepath.Join(dir, name)
		if child.leaf {
			if w.excl.excluded(full) {
				continue
			}
			fi, err := os.Lstat(full)
			if err != nil {
				w.warn(full, err)
				continue
			}
			found++
			w.addEntry(d, name, full, fi, deviceOf(fi))
			continue
		}
		// An intermediate directory: follow symlinks to it.
		fi, err := os.Stat(full)
		if err != nil {
			w.warn(full, err)
			continue
		}
		if !fi.IsDir() {
			w.warn(full, fmt.Errorf("not a directory"))
			continue
		}
		node, err := w.nodeFromInfo(name, full, fi)
		if err != nil {
			w.warn(full, err)
		}
		node.Type = repo.NodeDir
		sub := w.newDir(d, node, full, d.oldSubtree(name))
		d.add(node, nil)
		n, err := w.walkSelected(sub, full, child)
		sub.childDone()
		found += n
		if err != nil {
			return found, err
		}
	}
	return found, nil
}

// walkDir adds all entries of the directory at path to d. dev is the file
// system of the source path (for OneFileSystem).
func (w *walker) walkDir(d *dirState, path string, dev uint64) {
	entries, err := os.ReadDir(path)
	if err != nil {
		w.warn(path, err)
	}
	// os.ReadDir sorts by name, bytewise.
	for _, e := range entries {
		if w.ctx.Err() != nil {
			return
		}
		full := filepath.Join(path, e.Name())
		if w.excl.excluded(full) {
			continue
		}
		fi, err := os.Lstat(full)
		if err != nil {
			w.warn(full, err)
			continue
		}
		w.addEntry(d, e.Name(), full, fi, dev)
	}
}

// addEntry adds one file-system object to d, walking directories and
// queueing files that must be read.
func (w *walker) addEntry(d *dirState, name, full string, fi fs.FileInfo, dev uint64) {
	node, err := w.nodeFromInfo(name, full, fi)
	if err != nil {
		w.warn(full, err)
	}
	old := d.old[name]
	switch node.Type {
	case repo.NodeDir:
		sub := w.newDir(d, node, full, d.oldSubtree(name))
		d.add(node, nil)
		if !w.opts.OneFileSystem || deviceOf(fi) == dev {
			w.walkDir(sub, full, dev)
		}
		sub.childDone()
	case repo.NodeFile:
		w.filesTotal.Add(1)
		w.bytesTotal.Add(node.Size)
		if reusable(old, node) && w.allIndexed(old.Content) {
			w.fileStatus(full, FileUnmodified, node.Size)
			node.Content = old.Content
			w.filesUnmodified.Add(1)
			w.filesDone.Add(1)
			w.bytesDone.Add(node.Size)
			d.add(node, nil)
			return
		}
		if old != nil && old.Type == repo.NodeFile {
			w.fileStatus(full, FileChanged, node.Size)
			w.filesChanged.Add(1)
		} else {
			w.fileStatus(full, FileNew, node.Size)
			w.filesNew.Add(1)
		}
		if node.Size == 0 {
			w.filesDone.Add(1)
			d.add(node, nil)
			return
		}
		f := &fileState{dir: d, node: node, path: full, info: fi}
		f.pending.Store(1)
		d.pending.Add(1)
		d.add(node, f)
		if node.Links > 1 {
			key := [2]uint64{node.DeviceID, node.Inode}
			if first := w.links[key]; first != nil {
				first.follow(f)
				return
			}
			w.links[key] = f
		}
		select {
		case w.fileJob <- f:
		case <-w.ctx.Done():
			f.failed = true
			f.release()
		}
	default:
		d.add(node, nil)
	}
}

// fileStatus reports a file's change to Options.FileStatus.
func (w *walker) fileStatus(path string, c FileChange, size uint64) {
	if w.opts.FileStatus != nil {
		w.opts.FileStatus(path, c, size)
	}
}

// reusable reports whether the parent's node old has the content of the
// file described by n.
func reusable(old, n *repo.Node) bool {
	return old != nil && old.Type == repo.NodeFile &&
		old.Size == n.Size && old.Inode == n.Inode &&
		old.ModTime.Equal(n.ModTime) && old.ChangeTime.Equal(n.ChangeTime) &&
		(n.Size == 0 || len(old.Content) > 0)
}

// allIndexed reports whether every chunk of a parent's file is in the
// index: a parent whose data was lost (a damaged index, a pruned pack) is
// not trusted, the file is read again.
func (w *walker) allIndexed(content []repo.Chunk) bool {
	for _, c := range content {
		if c.ID != nil && !w.r.HasBlob(repo.DataBlob, *c.ID) {
			return false
		}
	}
	return true
}

// dirState is a directory being backed up. It completes when the walker
// has listed it and all its files and subdirectories are complete; then
// its tree is saved and its parent told.
type dirState struct {
	w       *walker
	parent  *dirState
	node    *repo.Node // nil for the root
	path    string
	entries []entry
	pending atomic.Int64
	oldID   *repo.ID
	old     map[string]*repo.Node

	id   repo.ID       // the saved tree
	done chan struct{} // root only: closed when complete
}

type entry struct {
	node *repo.Node
	file *fileState // set when the file is read; dropped if that fails
}

func (w *walker) newDir(parent *dirState, node *repo.Node, path string, oldID *repo.ID) *dirState {
	d := &dirState{w: w, parent: parent, node: node, path: path, oldID: oldID}
	d.pending.Store(1) // held by the walker until listed
	if parent != nil {
		parent.pending.Add(1)
	}
	if oldID != nil {
		t, err := w.r.LoadTree(w.ctx, *oldID)
		if err == nil {
			d.old = make(map[string]*repo.Node, len(t.Nodes))
			for _, n := range t.Nodes {
				d.old[n.Name] = n
			}
		}
	}
	return d
}

// oldSubtree returns the parent snapshot's tree of the subdirectory name.
func (d *dirState) oldSubtree(name string) *repo.ID {
	if n := d.old[name]; n != nil && n.Type == repo.NodeDir {
		return n.Subtree
	}
	return nil
}

func (d *dirState) add(n *repo.Node, f *fileState) {
	d.entries = append(d.entries, entry{node: n, file: f})
}

func (d *dirState) childDone() {
	if d.pending.Add(-1) == 0 {
		d.complete()
	}
}

// complete saves the directory's tree and reports to the parent.
func (d *dirState) complete() {
	w := d.w
	tree := &repo.Tree{Nodes: make([]*repo.Node, 0, len(d.entries))}
	for _, e := range d.entries {
		if e.file != nil && e.file.failed {
			continue
		}
		tree.Nodes = append(tree.Nodes, e.node)
	}
	d.entries = nil
	d.old = nil
	if !w.opts.DryRun && w.ctx.Err() == nil {
		id, err := w.r.SaveTree(w.ctx, tree)
		if err != nil {
			w.fail(fmt.Errorf("save tree of %s: %w", d.path, err))
		} else {
			d.id = id
			if d.node != nil {
				d.node.Subtree = &id
			}
			if d.oldID == nil || *d.oldID != id {
				w.treeBlobs.Add(1)
			}
		}
	}
	if d.node != nil {
		switch {
		case d.oldID == nil:
			w.dirsNew.Add(1)
		case !w.opts.DryRun && *d.oldID == d.id:
			w.dirsUnmodified.Add(1)
		default:
			w.dirsChanged.Add(1)
		}
	}
	if d.parent != nil {
		d.parent.childDone()
	} else {
		close(d.done)
	}
}

// fileState is a regular file being read. pending counts its chunks not
// yet saved plus one held by the reader until it has read the whole file.
type fileState struct {
	dir     *dirState
	node    *repo.Node
	path    string
	info    fs.FileInfo
	content []repo.Chunk
	failed  bool
	pending atomic.Int64

	mu        sync.Mutex // guards finished and followers
	finished  bool
	followers []*fileState
}

func (f *fileState) chunkSaved() { f.release() }

func (f *fileState) release() {
	if f.pending.Add(-1) != 0 {
		return
	}
	if !f.failed {
		f.node.Content = f.content
	}
	f.content = nil
	f.mu.Lock()
	f.finished = true
	followers := f.followers
	f.followers = nil
	f.mu.Unlock()
	for _, o := range followers {
		f.lead(o)
	}
	f.dir.w.filesDone.Add(1)
	f.dir.childDone()
}

// follow makes o, another hard link to f's file, take f's content when f
// is complete instead of reading the file again.
func (f *fileState) follow(o *fileState) {
	f.mu.Lock()
	if !f.finished {
		f.followers = append(f.followers, o)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.lead(o)
}

// lead completes the follower o from the complete file f.
func (f *fileState) lead(o *fileState) {
	o.failed = f.failed
	o.content = f.node.Content
	o.node.Size = f.node.Size
	f.dir.w.bytesDone.Add(o.node.Size)
	o.release()
}

// fileReader reads files and cuts them into chunks.
type fileReader struct {
	w   *walker
	seg *chunk.Segmenter
	buf []byte
	cur *fileState
}

func (rd *fileReader) loop() {
	defer rd.w.readers.Done()
	for f := range rd.w.fileJob {
		if rd.w.ctx.Err() != nil {
			f.failed = true
		} else {
			rd.read(f)
		}
		f.release()
	}
}

// read reads and chunks one file. Errors that concern the file are
// warnings (the file is left out); errors of the backup itself are
// recorded by fail.
func (rd *fileReader) read(f *fileState) {
	w := rd.w
	w.setCurrent(f.path)
	rd.cur = f
	defer func() { rd.cur = nil }()
	size, err := rd.readFile(f)
	if err != nil {
		rd.seg.Reset()
		f.failed = true
		if w.ctx.Err() == nil {
			w.warn(f.path, err)
		}
		return
	}
	if err := rd.seg.Close(); err != nil {
		rd.seg.Reset()
		f.failed = true
		return
	}
	f.node.Size = uint64(size)
}

func (rd *fileReader) readFile(f *fileState) (int64, error) {
	w := rd.w
	fh, err := openForRead(f.path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	filesOpened.Add(1)
	fi, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() || !sameFile(fi, f.info) {
		return 0, fmt.Errorf("file was replaced during the backup")
	}
	ranges, sparse := dataRanges(fh, fi)
	if !sparse {
		ranges = [][2]int64{{0, -1}}
	}
	var off int64
	for _, r := range ranges {
		if r[0] > off {
			if err := rd.seg.WriteZeros(r[0] - off); err != nil {
				return 0, err
			}
			w.bytesDone.Add(uint64(r[0] - off))
			off = r[0]
		}
		for r[1] < 0 || off < r[1] {
			want := len(rd.buf)
			if r[1] >= 0 {
				want = int(min(int64(want), r[1]-off))
			}
			n, err := fh.ReadAt(rd.buf[:want], off)
			if n > 0 {
				bytesRead.Add(uint64(n))
				w.bytesDone.Add(uint64(n))
				if err := rd.seg.Write(rd.buf[:n]); err != nil {
					return 0, err
				}
				off += int64(n)
			}
			if err == io.EOF {
				if r[1] >= 0 {
					return 0, fmt.Errorf("file shrank during the backup")
				}
				break
			}
			if err != nil {
				return 0, err
			}
			if w.ctx.Err() != nil {
				return 0, w.err()
			}
		}
	}
	if sparse && off < fi.Size() {
		if err := rd.seg.WriteZeros(fi.Size() - off); err != nil {
			return 0, err
		}
		w.bytesDone.Add(uint64(fi.Size() - off))
		off = fi.Size()
	}
	return off, nil
}

// emit receives the pieces of the current file from the segmenter.
func (rd *fileReader) emit(p chunk.Piece) error {
	f := rd.cur
	if p.Data == nil {
		f.content = append(f.content, repo.Chunk{Len: uint64(p.Len)})
		return nil
	}
	id := new(repo.ID)
	f.content = append(f.content, repo.Chunk{ID: id, Len: uint64(p.Len)})
	f.pending.Add(1)
	if err := rd.w.submit(p.Data, id, f); err != nil {
		f.pending.Add(-1)
		return err
	}
	return nil
}
