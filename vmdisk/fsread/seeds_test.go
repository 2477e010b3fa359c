package fsread

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeed is a small real file-system image for the fuzz tests. The fuzz
// input is the whole image, or, when base is set, replaces the head of
// base (for file systems whose minimum size is large: its metadata sits
// at the start).
type fuzzSeed struct {
	typ  string
	data []byte
	base io.ReaderAt
	size int64
}

func (s fuzzSeed) open(data []byte) (*FS, error) {
	if s.base != nil {
		return Open(overlay{s.base, data}, s.size, s.typ)
	}
	return Open(bytesReaderAt(data), int64(len(data)), s.typ)
}

// seedTree writes the small tree the seeds hold.
func seedTree(t testing.TB, src string, links bool) {
	t.Helper()
	for name, data := range map[string]string{"a.txt": "alpha\n", "d/b.txt": strings.Repeat("beta ", 500), "d/e/c": "gamma", "Long Name.txt": "long"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if links {
		if err := os.Symlink("d/b.txt", filepath.Join(src, "l")); err != nil {
			t.Fatal(err)
		}
	}
}

// makeSeeds builds the seeds of one file-system type with script (run in
// a directory holding the tree in src/), reading image names; a name
// with "@N" uses its first N KiB over the full image.
func makeSeeds(t testing.TB, typ string, links bool, script string, images ...string) []fuzzSeed {
	t.Helper()
	dir := t.TempDir()
	seedTree(t, filepath.Join(dir, "src"), links)
	sh(t, dir, script)
	var seeds []fuzzSeed
	for _, img := range images {
		name, headKiB, _ := strings.Cut(img, "@")
		path := filepath.Join(dir, name)
		s := fuzzSeed{typ: typ}
		if headKiB == "" {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s.data = b
		} else {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range headKiB {
				n = n*10 + int(c-'0')
			}
			s.data = make([]byte, n<<10)
			if _, err := f.ReadAt(s.data, 0); err != nil {
				t.Fatal(err)
			}
			s.base, s.size = f, st.Size()
		}
		fsys, err := s.open(s.data)
		if err != nil {
			t.Fatalf("seed %s: %v", img, err)
		}
		if es, err := fsys.ReadDir("."); err != nil || len(es) < 3 {
			t.Fatalf("seed %s: root %v, %v", img, es, err)
		}
		seeds = append(seeds, s)
	}
	return seeds
}

func extSeeds(t testing.TB) []fuzzSeed {
	needTools(t, "mkfs.ext4", "mkfs.ext2")
	return makeSeeds(t, "ext4", true, `
mkfs.ext4 -q -F -b 1024 -N 32 -m 0 -O ^has_journal,^resize_inode -d src ext4.img 128k
mkfs.ext2 -q -F -b 1024 -N 32 -m 0 -O ^resize_inode -d src ext2.img 96k`, "ext4.img", "ext2.img")
}

func fatSeeds(t testing.TB) []fuzzSeed {
	needTools(t, "mkfs.vfat", "mcopy")
	// FAT32 needs 65525 clusters: its seed is the head (boot sectors and
	// the start of the FATs) of a 33 MiB image.
	return makeSeeds(t, "vfat", false, `
mkfs.vfat -F 12 -C fat12.img 160 >/dev/null && mcopy -s -m -i fat12.img src/* ::/
mkfs.vfat -F 32 -C fat32.img 34000 >/dev/null && mcopy -s -m -i fat32.img src/* ::/`, "fat12.img", "fat32.img@48")
}

func ntfsSeeds(t testing.TB) []fuzzSeed {
	needTools(t, "mkntfs", "ntfscp")
	// The boot sector and the MFT (at cluster 24 with 512-byte clusters)
	// lie in the first 128 KiB.
	return makeSeeds(t, "ntfs", false, `
truncate -s 2M ntfs.img
mkntfs -q -F -f -s 512 -c 512 ntfs.img >/dev/null 2>&1
ntfscp -q ntfs.img src/a.txt /a.txt
ntfscp -q ntfs.img src/d/b.txt /b.txt
ntfscp -q ntfs.img "src/Long Name.txt" "/Long Name.txt"`, "ntfs.img@128")
}

func xfsSeeds(t testing.TB) []fuzzSeed {
	needTools(t, "mkfs.xfs")
	// The superblock, the first allocation group's headers, the root
	// inode chunk and the first data blocks lie in the first 256 KiB.
	return makeSeeds(t, "xfs", true, `
printf '/dev/null\n0 0\nd--755 0 0\n  a.txt ---644 0 0 %s\n  d d--755 0 0\n    b.txt ---644 0 0 %s\n    e d--755 0 0\n      c ---644 0 0 %s\n    $\n  $\n  l l--777 0 0 d/b.txt\n$\n' \
  "$PWD/src/a.txt" "$PWD/src/d/b.txt" "$PWD/src/d/e/c" > proto
truncate -s 300M xfs.img && mkfs.xfs -q -f -p proto xfs.img`, "xfs.img@256")
}

func fuzzFS(f *testing.F, seeds []fuzzSeed) {
	for i, s := range seeds {
		f.Add(uint8(i), s.data)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		fsys, err := seeds[int(which)%len(seeds)].open(data)
		if err != nil {
			return
		}
		walkBounded(fsys)
	})
}

func FuzzExt(f *testing.F)  { fuzzFS(f, extSeeds(f)) }
func FuzzFAT(f *testing.F)  { fuzzFS(f, fatSeeds(f)) }
func FuzzNTFS(f *testing.F) { fuzzFS(f, ntfsSeeds(f)) }
func FuzzXFS(f *testing.F)  { fuzzFS(f, xfsSeeds(f)) }

// TestMutatedImages opens and walks deterministic mutations of the fuzz
// seeds (random bytes, all-ones words, bit flips, truncation): a fast,
// always-on complement to the fuzz tests. FSREAD_MUTATIONS=N runs N
// mutations per file system, with a random seed, for a longer campaign.
func TestMutatedImages(t *testing.T) {
	rounds, pcgSeed := 400, uint64(1)
	if n, err := strconv.Atoi(os.Getenv("FSREAD_MUTATIONS")); err == nil && n > 0 {
		rounds, pcgSeed = n, rand.Uint64()
		t.Logf("PCG seed %d", pcgSeed)
	}
	for _, tc := range []struct {
		name  string
		seeds func(testing.TB) []fuzzSeed
	}{{"ext", extSeeds}, {"fat", fatSeeds}, {"ntfs", ntfsSeeds}, {"xfs", xfsSeeds}} {
		t.Run(tc.name, func(t *testing.T) {
			seeds := tc.seeds(t)
			rng := rand.New(rand.NewPCG(pcgSeed, uint64(len(tc.name))))
			opened := 0
			for i := range rounds {
				s := seeds[i%len(seeds)]
				img := append([]byte(nil), s.data...)
				for range 1 + rng.IntN(8) {
					o := rng.IntN(min(len(img), 64<<10) - 4)
					switch rng.IntN(4) {
					case 0:
						img[o] = byte(rng.UintN(256))
					case 1:
						copy(img[o:], []byte{0xff, 0xff, 0xff, 0xff})
					case 2:
						copy(img[o:], []byte{0xff, 0xff, 0xff, 0x7f})
					default:
						img[o] ^= 1 << rng.IntN(8)
					}
				}
				if s.base == nil && rng.IntN(10) == 0 {
					img = img[:rng.IntN(len(img))]
				}
				fsys, err := s.open(img)
				if err != nil {
					continue
				}
				opened++
				walkBounded(fsys)
			}
			if opened == 0 {
				t.Error("no mutated image opened")
			}
		})
	}
}
