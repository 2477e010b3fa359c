// Command benchtool is the helper of the benchmark script
// scripts/bench/bench.sh. It writes the script's deterministic data sets (a
// tree of many small files plus some large ones, a single large file with
// realistic content, a sparse disk image with its data packed into a small
// image, the "2% changed" version of a disk image), warms the page cache
// with the data of files without reading their holes, and turns the
// script's CSV of raw results into a Markdown table of medians.
//
// Every byte is derived from a ChaCha8 stream seeded from the -seed flag, so
// the same flags produce the same files on every machine and Go version
// (math/rand/v2's ChaCha8 is specified, not an implementation detail).
//
// Content is a mix of what real systems hold: English-like text (Zipf
// distributed words, compresses about 3x), log lines (compresses well),
// random bytes (incompressible, like media or encrypted data), low-entropy
// binary (16 distinct byte values, compresses about 2x) and runs of zeros.
//
// Usage:
//
//	benchtool tree   -dir DIR -size BYTES [-seed N]
//	benchtool file   -out FILE -size BYTES [-seed N]
//	benchtool sparse -big FILE -small FILE -vsize BYTES -data BYTES [-extents N] [-seed N]
//	benchtool mutate -file IMAGE -frac 0.02 [-start BYTES] [-end BYTES] [-seed N]
//	benchtool step   -dir DIR -step N [-files 100] [-seed N]
//	benchtool warm   PATH...
//	benchtool report -csv FILE
//
// BYTES accept the suffixes K, M, G, T (powers of 1024).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	kib  = 1024
	mib  = 1024 * kib
	page = 4 * kib
)

// fixedTime is the modification time of every generated file, so that two
// generations of the same tree are indistinguishable.
var fixedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "tree":
		err = cmdTree(os.Args[2:])
	case "file":
		err = cmdFile(os.Args[2:])
	case "sparse":
		err = cmdSparse(os.Args[2:])
	case "mutate":
		err = cmdMutate(os.Args[2:])
	case "step":
		err = cmdStep(os.Args[2:])
	case "warm":
		err = cmdWarm(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool tree|file|sparse|mutate|step|warm|report [flags] (see the package doc)")
	os.Exit(2)
}

// sizeFlag is a byte count with an optional K/M/G/T suffix.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	v = strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(v), "B"), "I")
	if v != "" {
		switch v[len(v)-1] {
		case 'K':
			mult = kib
		case 'M':
			mult = mib
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			v = v[:len(v)-1]
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("parse size %q: not a non-negative integer with optional K/M/G/T suffix", v)
	}
	return n * mult, nil
}

// gen produces deterministic content of several kinds.
type gen struct {
	src  *rand.ChaCha8
	r    *rand.Rand
	zipf *rand.Zipf
}

func newGen(seed uint64, stream uint64) *gen {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
		key[8+i] = byte(stream >> (8 * i))
	}
	copy(key[16:], "bunker-benchmark")
	src := rand.NewChaCha8(key)
	r := rand.New(src)
	return &gen{src: src, r: r, zipf: rand.NewZipf(r, 1.1, 2, uint64(len(words)-1))}
}

// words is the vocabulary of the text generator; with Zipf-distributed
// choices the result compresses roughly like English prose.
var words = strings.Fields(`the of and to a in is it you that he was for on are with as I his they be at
one have this from or had by hot word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so these her long
make thing see him two has look more day could go come did number sound no most people my over know water
than call first who may down side been now find any new work part take get place made live where after
back little only round man year came show every good me give our under name very through just form
sentence great think say help low line differ turn cause much mean before move right boy old too same tell
does set three want air well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house picture try us again
animal point mother world near build self earth father head stand own page should country found answer
school grow study still learn plant cover food sun four between state keep eye never last let thought city
tree cross farm hard start might story saw far sea draw left late run while press close night real life
few north open seem together next white children begin got walk example ease paper group always music
those both mark often letter until mile river car feet care second book carry took science eat room
friend began idea fish mountain stop once base hear horse cut sure watch color face wood main enough
plain girl usual young ready above ever red list though feel talk bird soon body dog family direct pose
leave song measure door product black short numeral class wind question happen complete ship area half
rock order fire south problem piece told knew pass since top whole king space heard best hour better
true during hundred five remember step early hold west ground interest reach fast verb sing listen six
table travel less morning ten simple several vowel toward war lay against pattern slow center love person
money serve appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall
lead cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive
stood contain front teach week final gave green oh quick develop ocean warm free minute strong special
mind behind clear tail produce fact street inch multiply nothing course stay wheel full force blue object
decide surface deep moon island foot system busy test record boat common gold possible plane stead dry
wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes distant fill
east paint language among kernel config server request response database backup volume cluster network`)

var levels = []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
var services = []string{"nginx", "postgres", "sshd", "kernel", "systemd", "cron", "app-api", "app-worker"}

// kinds of content, with the weights used by a mixed stream.
const (
	kindText = iota
	kindLog
	kindRandom
	kindLowEntropy
	kindZero
)

func (g *gen) fill(kind int, p []byte) {
	switch kind {
	case kindText:
		g.text(p)
	case kindLog:
		g.logLines(p)
	case kindRandom:
		_, _ = g.src.Read(p)
	case kindLowEntropy:
		_, _ = g.src.Read(p)
		const alphabet = "\x00\x01\x02\x04\x08\x10\x20\x40\x80\xff\x7f\x3f\x1f\x0f\x07\x03"
		for i, b := range p {
			p[i] = alphabet[b&15]
		}
	case kindZero:
		clear(p)
	}
}

func (g *gen) text(p []byte) {
	i, col := 0, 0
	for i < len(p) {
		w := words[g.zipf.Uint64()]
		if col > 0 {
			if col+len(w) > 72 {
				p[i] = '\n'
				col = 0
			} else {
				p[i] = ' '
				col++
			}
			i++
		}
		n := copy(p[i:], w)
		i += n
		col += n
		if g.r.IntN(12) == 0 && i < len(p) {
			p[i] = '.'
			i++
		}
	}
}

func (g *gen) logLines(p []byte) {
	var line []byte
	i := 0
	t := int64(1767225600) + g.r.Int64N(86400*365)
	for i < len(p) {
		t += g.r.Int64N(3)
		line = line[:0]
		line = time.Unix(t, 0).UTC().AppendFormat(line, "2006-01-02T15:04:05")
		line = fmt.Appendf(line, ".%03dZ host-%02d %s[%d]: level=%s msg=\"%s %s %s\" latency_ms=%d req=%016x\n",
			g.r.IntN(1000), g.r.IntN(16), services[g.r.IntN(len(services))], 1000+g.r.IntN(30000),
			levels[g.r.IntN(len(levels))], words[g.zipf.Uint64()], words[g.zipf.Uint64()], words[g.zipf.Uint64()],
			g.r.IntN(2000), g.r.Uint64())
		i += copy(p[i:], line)
	}
}

// mixed is an endless stream of segments of random kind and size.
type mixed struct {
	g        *gen
	weights  []int // per kind
	minSeg   int64
	maxSeg   int64
	kind     int
	left     int64
	produced int64
}

func newMixed(g *gen, zeros bool, minSeg, maxSeg int64) *mixed {
	w := []int{25, 15, 35, 15, 10}
	if !zeros {
		w[kindZero] = 0
	}
	return &mixed{g: g, weights: w, minSeg: minSeg, maxSeg: maxSeg}
}

func (m *mixed) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if m.left == 0 {
			total := 0
			for _, w := range m.weights {
				total += w
			}
			x := m.g.r.IntN(total)
			for k, w := range m.weights {
				if x < w {
					m.kind = k
					break
				}
				x -= w
			}
			m.left = (m.minSeg + m.g.r.Int64N(m.maxSeg-m.minSeg+1)) / page * page
			if m.left == 0 {
				m.left = page
			}
		}
		c := int64(len(p) - n)
		c = min(c, m.left)
		m.g.fill(m.kind, p[n:n+int(c)])
		n += int(c)
		m.left -= c
		m.produced += c
	}
	return n, nil
}

func writeFile(path string, r io.Reader, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(f, io.LimitReader(r, size), make([]byte, mib)); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chtimes(path, fixedTime, fixedTime)
}

func cmdFile(args []string) error {
	fs := flag.NewFlagSet("file", flag.ExitOnError)
	out := fs.String("out", "", "output file")
	var size sizeFlag
	fs.Var(&size, "size", "size in bytes")
	seed := fs.Uint64("seed", 1, "seed")
	_ = fs.Parse(args)
	if *out == "" || size == 0 {
		return errors.New("file: -out and -size are required")
	}
	m := newMixed(newGen(*seed, 1), true, mib, 64*mib)
	return writeFile(*out, m, int64(size))
}

// cmdTree writes a directory tree: 60% of the bytes in small files of
// log-normal size (median 4 KiB) spread over directories of 100 files, the
// rest in four large files of mixed content.
func cmdTree(args []string) error {
	fs := flag.NewFlagSet("tree", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory")
	var size sizeFlag
	fs.Var(&size, "size", "total size in bytes")
	seed := fs.Uint64("seed", 1, "seed")
	_ = fs.Parse(args)
	if *dir == "" || size == 0 {
		return errors.New("tree: -dir and -size are required")
	}
	g := newGen(*seed, 2)
	smallTarget := int64(size) * 6 / 10
	var total, files, dirs int64
	var sizes []int64
	var seeds []uint64
	buf := make([]byte, 4*mib)
	exts := []string{".txt", ".log", ".bin", ".dat", ".txt", ".json"}
	kindsFor := map[string]int{".txt": kindText, ".log": kindLog, ".bin": kindRandom, ".dat": kindLowEntropy, ".json": kindText}
	bw := bufio.NewWriterSize(nil, 256*kib)
	for total < smallTarget {
		i := files
		leaf := i / 100
		d := filepath.Join(*dir, fmt.Sprintf("d%02d", leaf/20), fmt.Sprintf("s%03d", leaf))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			dirs++
		}
		var n int64
		var fileSeed uint64
		x := g.r.IntN(100)
		switch {
		case x < 3: // empty file
		case x < 8 && len(sizes) > 0: // duplicate of an earlier file
			j := g.r.IntN(len(sizes))
			n, fileSeed = sizes[j], seeds[j]
		default:
			n = int64(4096 * math.Exp(1.8*g.r.NormFloat64()))
			n = min(max(n, 1), 2*mib)
			fileSeed = g.r.Uint64()
			sizes = append(sizes, n)
			seeds = append(seeds, fileSeed)
		}
		ext := exts[fileSeed%uint64(len(exts))]
		path := filepath.Join(d, fmt.Sprintf("f%06d%s", i, ext))
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		fg := newGen(fileSeed, 3)
		bw.Reset(f)
		for left := n; left > 0; {
			c := min(left, int64(len(buf)))
			fg.fill(kindsFor[ext], buf[:c])
			if _, err := bw.Write(buf[:c]); err != nil {
				f.Close()
				return err
			}
			left -= c
		}
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Chtimes(path, fixedTime, fixedTime); err != nil {
			return err
		}
		total += n
		files++
	}
	large := filepath.Join(*dir, "large")
	if err := os.MkdirAll(large, 0o755); err != nil {
		return err
	}
	rest := int64(size) - total
	m := newMixed(g, true, 256*kib, 16*mib)
	for i := range 4 {
		n := rest / int64(4-i)
		if err := writeFile(filepath.Join(large, fmt.Sprintf("large%d.img", i)), m, n); err != nil {
			return err
		}
		rest -= n
		total += n
		files++
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{"files": files, "dirs": dirs + 1, "bytes": total})
}

// cmdSparse writes a sparse image of -vsize bytes holding -data bytes in
// -extents equal extents at random 1 MiB aligned offsets (one per equal
// slot of the image), and a small image holding the same extents back to back.
func cmdSparse(args []string) error {
	fs := flag.NewFlagSet("sparse", flag.ExitOnError)
	big := fs.String("big", "", "sparse output image")
	small := fs.String("small", "", "dense output image with the same data")
	var vsize, data sizeFlag
	fs.Var(&vsize, "vsize", "virtual size of the sparse image")
	fs.Var(&data, "data", "bytes of data")
	extents := fs.Int64("extents", 64, "number of data extents")
	seed := fs.Uint64("seed", 1, "seed")
	_ = fs.Parse(args)
	if *big == "" || *small == "" || vsize == 0 || data == 0 {
		return errors.New("sparse: -big, -small, -vsize and -data are required")
	}
	ext := int64(data) / *extents / mib * mib
	slot := int64(vsize) / *extents / mib * mib
	if ext == 0 || ext > slot {
		return errors.New("sparse: extents do not fit")
	}
	g := newGen(*seed, 4)
	m := newMixed(g, false, mib, 16*mib)
	bf, err := os.Create(*big)
	if err != nil {
		return err
	}
	defer bf.Close()
	sf, err := os.Create(*small)
	if err != nil {
		return err
	}
	defer sf.Close()
	if err := bf.Truncate(int64(vsize)); err != nil {
		return err
	}
	buf := make([]byte, mib)
	var layout [][2]int64
	for i := range *extents {
		off := slot*i + g.r.Int64N((slot-ext)/mib+1)*mib
		layout = append(layout, [2]int64{off, ext})
		for done := int64(0); done < ext; done += mib {
			_, _ = m.Read(buf)
			if _, err := bf.WriteAt(buf, off+done); err != nil {
				return err
			}
			if _, err := sf.WriteAt(buf, i*ext+done); err != nil {
				return err
			}
		}
	}
	for _, f := range []*os.File{bf, sf} {
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Chtimes(f.Name(), fixedTime, fixedTime); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"vsize": int64(vsize), "data": ext * *extents, "extents": layout})
}

// cmdMutate changes about -frac of an image's 4 KiB pages in place, within
// [-start, -end): clusters start at a random page that holds data (is not all
// zeros); each cluster overwrites 32 distinct random pages of the 64-page
// (256 KiB) window that begins there with random bytes. Clusters are added
// until frac * (end-start) / 4096 pages have changed.
func cmdMutate(args []string) error {
	fs := flag.NewFlagSet("mutate", flag.ExitOnError)
	file := fs.String("file", "", "image to change in place")
	frac := fs.Float64("frac", 0.02, "fraction of the range's pages to change")
	var start, end sizeFlag
	fs.Var(&start, "start", "first byte of the range (default 0)")
	fs.Var(&end, "end", "end of the range (default: image size)")
	cluster := fs.Int("cluster", 32, "pages changed per cluster")
	window := fs.Int("window", 64, "pages in a cluster's window")
	seed := fs.Uint64("seed", 1, "seed")
	_ = fs.Parse(args)
	if *file == "" {
		return errors.New("mutate: -file is required")
	}
	f, err := os.OpenFile(*file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if end == 0 {
		end = sizeFlag(st.Size())
	}
	if start%page != 0 || end%page != 0 || end <= start || int64(end) > st.Size() {
		return errors.New("mutate: -start and -end must be 4 KiB aligned and inside the image")
	}
	first, npages := int64(start)/page, int64(end-start)/page
	// Find the pages that hold data, skipping holes.
	var data []int64
	buf := make([]byte, page)
	const seekData, seekHole = 3, 4
	for off := int64(start); off < int64(end); {
		d, err := f.Seek(off, seekData)
		if err != nil || d >= int64(end) {
			break
		}
		h, err := f.Seek(d, seekHole)
		if err != nil {
			return err
		}
		h = min(h, int64(end))
		for p := d / page * page; p < h; p += page {
			if _, err := f.ReadAt(buf, p); err != nil {
				return err
			}
			if !allZero(buf) {
				data = append(data, p/page-first)
			}
		}
		off = h
	}
	if len(data) == 0 {
		return errors.New("mutate: no data pages in range")
	}
	g := newGen(*seed, 5)
	target := int64(math.Round(*frac * float64(npages)))
	changed := make(map[int64]bool, target)
	clusters := 0
	for int64(len(changed)) < target {
		s := data[g.r.IntN(len(data))]
		clusters++
		got := 0
		for tries := 0; got < *cluster && tries < 8*(*cluster) && int64(len(changed)) < target; tries++ {
			p := s + int64(g.r.IntN(*window))
			if p >= npages || changed[p] {
				continue
			}
			changed[p] = true
			got++
		}
	}
	pages := make([]int64, 0, len(changed))
	for p := range changed {
		pages = append(pages, p)
	}
	slices.Sort(pages)
	wasZero := 0
	for _, p := range pages {
		off := (first + p) * page
		if _, err := f.ReadAt(buf, off); err != nil {
			return err
		}
		if allZero(buf) {
			wasZero++
		}
		_, _ = g.src.Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{
		"range_pages": npages, "data_pages": int64(len(data)), "changed_pages": int64(len(pages)),
		"changed_bytes": int64(len(pages)) * page, "previously_zero_pages": int64(wasZero), "clusters": int64(clusters),
	})
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// cmdStep writes one step of the prune benchmark's backup history: step 0
// fills DIR with -files random 1 MiB files; every later step rewrites f000
// and f001 (data only the snapshot of this step will hold) and three other
// files chosen by the step, so consecutive snapshots share most data and
// forgetting every other snapshot leaves packs partly unused.
func cmdStep(args []string) error {
	fs := flag.NewFlagSet("step", flag.ExitOnError)
	dir := fs.String("dir", "", "directory to change")
	step := fs.Int("step", 0, "step number")
	files := fs.Int("files", 100, "files in the directory")
	seed := fs.Uint64("seed", 1, "seed")
	_ = fs.Parse(args)
	if *dir == "" || *files < 5 {
		return errors.New("step: -dir is required and -files must be at least 5")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewChaCha8(seedBytes(*seed, uint64(*step))))
	var which []int
	if *step == 0 {
		for i := range *files {
			which = append(which, i)
		}
	} else {
		which = []int{0, 1}
		for _, i := range rng.Perm(*files - 2)[:3] {
			which = append(which, i+2)
		}
	}
	buf := make([]byte, mib)
	for _, i := range which {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		name := filepath.Join(*dir, fmt.Sprintf("f%03d", i))
		if err := os.WriteFile(name, buf, 0o644); err != nil {
			return err
		}
		// A distinct mtime per step, so change detection sees every rewrite.
		mt := fixedTime.Add(time.Duration(*step) * time.Hour)
		if err := os.Chtimes(name, mt, mt); err != nil {
			return err
		}
	}
	return nil
}

// seedBytes derives a ChaCha8 seed from a seed and a stream number.
func seedBytes(seed, stream uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(stream >> (8 * i))
	}
	b[16] = 's'
	return b
}
