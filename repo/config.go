package repo

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// FormatVersion is the repository format version this package writes and
// the newest it reads.
const FormatVersion = 1

// ChunkerParams are the parameters of content-defined chunking: chunks are
// at least Min and at most Max bytes and on average 2^AvgBits bytes.
type ChunkerParams struct {
	Min     int `json:"min"`
	AvgBits int `json:"avg_bits"`
	Max     int `json:"max"`
}

// Default chunker parameters. The disk parameters are tuned on disk images
// (see docs/benchmarks.md); callers of Init may override both.
var (
	DefaultFileChunker = ChunkerParams{Min: 512 << 10, AvgBits: 20, Max: 8 << 20}
	DefaultDiskChunker = ChunkerParams{Min: 32 << 10, AvgBits: 16, Max: 512 << 10}
)

func (p ChunkerParams) validate() error {
	if p.Min <= 0 || p.Max < p.Min || p.AvgBits < 10 || p.AvgBits > 30 || p.Max > 1<<30 {
		return fmt.Errorf("invalid chunker parameters min=%d avg_bits=%d max=%d", p.Min, p.AvgBits, p.Max)
	}
	return nil
}

// Config is the repository configuration, stored sealed in the file config.
type Config struct {
	Version int
	// ID is a random identifier of the repository (64 hex digits).
	ID string
	// ChunkerPolynomial is the irreducible polynomial of degree 53 over
	// GF(2) used by the Rabin chunker; random per repository.
	ChunkerPolynomial uint64
	FileChunker       ChunkerParams
	DiskChunker       ChunkerParams
	// Compression is "auto" (zstd when it pays), "max" (zstd at a slower,
	// stronger level when it pays) or "off": the default of backups, which
	// may choose another per run.
	Compression string
	// MinRetention is the minimum retention period ("30d", "1y2m"; empty
	// for none): no snapshot younger than it is removed. Package retention
	// parses it.
	MinRetention string
}

type configJSON struct {
	Version           int           `json:"version"`
	ID                string        `json:"id"`
	ChunkerPolynomial string        `json:"chunker_polynomial"`
	FileChunker       ChunkerParams `json:"file_chunker"`
	DiskChunker       ChunkerParams `json:"disk_chunker"`
	Compression       string        `json:"compression"`
	MinRetention      string        `json:"min_retention,omitempty"`
}

// MarshalJSON encodes the config as stored (the polynomial in hex).
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{
		Version:           c.Version,
		ID:                c.ID,
		ChunkerPolynomial: strconv.FormatUint(c.ChunkerPolynomial, 16),
		FileChunker:       c.FileChunker,
		DiskChunker:       c.DiskChunker,
		Compression:       c.Compression,
		MinRetention:      c.MinRetention,
	})
}

// UnmarshalJSON decodes a stored config.
func (c *Config) UnmarshalJSON(b []byte) error {
	var j configJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	pol, err := strconv.ParseUint(j.ChunkerPolynomial, 16, 64)
	if err != nil {
		return fmt.Errorf("invalid chunker polynomial %q", j.ChunkerPolynomial)
	}
	*c = Config{
		Version:           j.Version,
		ID:                j.ID,
		ChunkerPolynomial: pol,
		FileChunker:       j.FileChunker,
		DiskChunker:       j.DiskChunker,
		Compression:       j.Compression,
		MinRetention:      j.MinRetention,
	}
	return nil
}

// parseConfig decodes and validates the plaintext of the config file.
func parseConfig(plain []byte) (Config, error) {
	var c Config
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(plain, &v); err != nil {
		return c, fmt.Errorf("decode config: %w", err)
	}
	if v.Version > FormatVersion {
		return c, newerFormat("config", v.Version)
	}
	if v.Version < 1 {
		return c, fmt.Errorf("decode config: invalid version %d", v.Version)
	}
	if err := json.Unmarshal(plain, &c); err != nil {
		return c, fmt.Errorf("decode config: %w", err)
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("decode config: %w", err)
	}
	return c, nil
}

func (c Config) validate() error {
	if len(c.ID) != 64 {
		return fmt.Errorf("invalid repository id %q", c.ID)
	}
	if _, err := hex.DecodeString(c.ID); err != nil {
		return fmt.Errorf("invalid repository id %q", c.ID)
	}
	if polDeg(c.ChunkerPolynomial) != 53 {
		return fmt.Errorf("invalid chunker polynomial %x: degree must be 53", c.ChunkerPolynomial)
	}
	if err := c.FileChunker.validate(); err != nil {
		return fmt.Errorf("file chunker: %w", err)
	}
	if err := c.DiskChunker.validate(); err != nil {
		return fmt.Errorf("disk chunker: %w", err)
	}
	if err := ValidCompression(c.Compression); err != nil {
		return err
	}
	return validRetentionPeriod(c.MinRetention)
}

// Polynomials over GF(2) are uint64 bit sets: bit i is the coefficient of x^i.

func polDeg(p uint64) int { return 63 - bits.LeadingZeros64(p) }

// polMulMod returns a*b mod m, for deg(a), deg(b) < deg(m) <= 62.
func polMulMod(a, b, m uint64) uint64 {
	d := polDeg(m)
	var r uint64
	for b != 0 {
		if b&1 != 0 {
			r ^= a
		}
		b >>= 1
		a <<= 1
		if a>>d&1 != 0 {
			a ^= m
		}
	}
	return r
}

func polMod(a, m uint64) uint64 {
	dm := polDeg(m)
	for a != 0 && polDeg(a) >= dm {
		a ^= m << (polDeg(a) - dm)
	}
	return a
}

func polGCD(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, polMod(a, b)
	}
	return a
}

// polIrreducible tests p with Ben-Or's algorithm: p of degree n is
// irreducible when gcd(x^(2^i) - x mod p, p) = 1 for all 1 <= i <= n/2.
func polIrreducible(p uint64) bool {
	n := polDeg(p)
	if n < 1 || n > 62 {
		return false
	}
	const x = 2
	xp := uint64(x) // x^(2^0)
	for i := 1; i <= n/2; i++ {
		xp = polMulMod(xp, xp, p) // x^(2^i) mod p
		if polGCD(xp^x, p) != 1 {
			return false
		}
	}
	return true
}

// RandomPolynomial returns a random irreducible polynomial of degree 53, as
// the Rabin chunker needs.
func RandomPolynomial() (uint64, error) {
	for range 1 << 20 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		p := binary.LittleEndian.Uint64(b[:])
		p &= 1<<53 - 1
		p |= 1<<53 | 1 // degree 53, constant term set
		if polIrreducible(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no irreducible polynomial found")
}

// reloadConfig reads the config again, so settings another process changed
// (the minimum retention period) apply. The chunker parameters and keys of a
// repository never change.
func (r *Repository) reloadConfig(ctx context.Context) error {
	sealed, err := r.be.Load(ctx, backend.Handle{Type: backend.ConfigFile}, 0, 0)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	plain, err := r.crypt.open(nil, sealed)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(plain)
	if err != nil {
		return err
	}
	r.cfg = cfg
	return nil
}
