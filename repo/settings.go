package repo

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bunkerbackup/bunker/repo/backend"
)

// validRetentionPeriod checks the syntax of a minimum retention period: one
// or more <digits><unit> with the units y, m, w, d, h, each at most once
// (package retention parses it; this only keeps a damaged or hand-edited
// config from being accepted). The empty string means no minimum.
func validRetentionPeriod(s string) error {
	if s == "" {
		return nil
	}
	seen := map[byte]bool{}
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits > 7 {
				return fmt.Errorf("invalid minimum retention %q: number too large", s)
			}
		case c == 'y' || c == 'm' || c == 'w' || c == 'd' || c == 'h':
			if digits == 0 || seen[c] {
				return fmt.Errorf("invalid minimum retention %q", s)
			}
			seen[c] = true
			digits = 0
		default:
			return fmt.Errorf("invalid minimum retention %q: unknown unit %q", s, string(c))
		}
	}
	if digits != 0 {
		return fmt.Errorf("invalid minimum retention %q: number without unit", s)
	}
	return nil
}

// SetMinRetention changes the repository's minimum retention period (for
// example "30d"; "" removes it) by rewriting the config. Call it holding the
// exclusive lock.
func (r *Repository) SetMinRetention(ctx context.Context, period string) error {
	if err := validRetentionPeriod(period); err != nil {
		return err
	}
	cfg := r.cfg
	cfg.MinRetention = period
	if err := r.saveConfig(ctx, cfg); err != nil {
		return fmt.Errorf("set minimum retention: %w", err)
	}
	return nil
}

// SetCompression changes the repository's default compression ("auto",
// "max" or "off") by rewriting the config. Call it holding the exclusive
// lock.
func (r *Repository) SetCompression(ctx context.Context, mode string) error {
	cfg := r.cfg
	cfg.Compression = mode
	if err := r.saveConfig(ctx, cfg); err != nil {
		return fmt.Errorf("set compression: %w", err)
	}
	return nil
}

// saveConfig replaces the config with cfg. The config is the one file that
// is replaced in place; backends save atomically, so a crash leaves the old
// or the new config.
func (r *Repository) saveConfig(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	// Check what we would write reads back as the same config: a config
	// that does not parse would make the repository unusable.
	if back, err := parseConfig(plain); err != nil || back != cfg {
		return fmt.Errorf("config does not round-trip: %v", err)
	}
	if err := r.be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, r.crypt.seal(nil, plain)); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	r.cfg = cfg
	return nil
}

// UseCompression sets the compression of the blobs this process saves
// ("auto", "max" or "off"), whatever the repository's default; "" returns
// to the default. Nothing is written: it is a per-run choice, like
// restic's --compression.
func (r *Repository) UseCompression(mode string) error {
	if mode != "" {
		if err := ValidCompression(mode); err != nil {
			return err
		}
	}
	r.pmu.Lock()
	r.runCompression = mode
	r.pmu.Unlock()
	return nil
}

// compression is the mode blobs are saved with now.
func (r *Repository) compression() string {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if r.runCompression != "" {
		return r.runCompression
	}
	return r.cfg.Compression
}

// ValidCompression checks a compression mode.
func ValidCompression(mode string) error {
	switch mode {
	case "auto", "max", "off":
		return nil
	}
	return fmt.Errorf("unknown compression %q: use auto, max or off", mode)
}
