// Package chunk cuts content into chunks for deduplication and finds the
// all-zero ranges that are never stored.
//
// # Content-defined chunking
//
// A [Splitter] cuts a byte stream where a Rabin fingerprint over a 64-byte
// window matches a mask: exactly where github.com/restic/chunker cuts, but
// computed over several stretches of the input at once (see rabin.go), at
// about three times its speed. The irreducible
// polynomial is chosen at random per repository and stored in its config, so
// chunk boundaries do not leak content across repositories. [Params] hold the
// minimum and maximum chunk size and the number of mask bits (the mean
// distance past the minimum is about 2^AvgBits bytes) as plain data, so the
// repository package stores them without importing this one.
//
// The splitter is push-style: the caller writes bytes in whatever pieces it
// read them, and the splitter hands out finished chunks in pooled [Buffer]s
// that the consumer releases after storing them. Nothing is allocated per
// chunk once the pool is warm.
//
// # Zero runs and the canonical segmentation
//
// Guest-visible content (a disk's bytes, a file's bytes) is cut by one rule,
// implemented by [Segmenter], so the result depends only on the bytes and not
// on how they were read (raw, VMDK grains of 64 KiB, VHD blocks of 2 MiB,
// qcow2 clusters, a sparse file's holes):
//
//  1. The stream is viewed as blocks of [BlockSize] (4 KiB) at offsets that
//     are multiples of 4 KiB from the start of the stream; the last block may
//     be shorter. A block is a zero block when all its bytes are zero, whether
//     it was read and scanned or known to be zero (an unallocated range of a
//     container or a hole of a sparse file, which is never read).
//  2. A zero run is a maximal run of consecutive zero blocks that is at least
//     [MinZeroRun] (64 KiB) long, or that touches the start or the end of
//     the stream (of any length). Zero runs are holes: they are not stored.
//  3. What remains are data runs. Each begins and ends with a non-zero block
//     and may contain zero stretches shorter than 64 KiB. Every data run is
//     chunked independently with content-defined chunking, starting from a
//     fresh chunker state, so a change inside one data run never moves the
//     chunk boundaries of another.
//  4. A chunk that is entirely zero (possible only in rare alignments) is a
//     hole as well.
//
// The repository config holds two parameter sets, one for disks and one for
// files; both use the same zero rule, so sparse files and zero runs inside
// files cost nothing. The mean chunk of a long data run is about
// Min + 2^AvgBits; a data run shorter than that is one chunk, so disks with
// fragmented data (many short data runs) have smaller chunks on average.
// A window of 64 zero bytes has fingerprint zero and so matches any mask:
// past Min, a chunk ends at the first such window. File-system images are
// full of them (the zero padding after every small file), which anchors
// boundaries to file ends and makes the mean chunk there little more than
// Min. TestDiskParamsExperiment measures deduplication against chunk count
// on a real disk image; TestZeroRunExperiment the effect of MinZeroRun.
package chunk
