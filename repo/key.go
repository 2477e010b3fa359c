package repo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/repo/backend"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KDFParams are the argon2id parameters that turn a password into the key
// that unwraps the master key.
type KDFParams struct {
	Time    uint32 // iterations
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultKDF costs about 0.1 to 0.3 s and 48 MiB on current machines: above
// OWASP's argon2id recommendation (46 MiB, one pass) and more memory per
// guess than restic's scrypt (32 MiB). Four passes over 48 MiB do more work
// per guess than two over 64 MiB (RFC 9106 §4: trade memory for passes when
// memory is constrained), while the derivation, which dominates every
// command's peak memory, stays small. Key files keep the parameters they were
// made with.
var DefaultKDF = KDFParams{Time: 4, Memory: 48 << 10, Threads: 2}

// testKDF replaces DefaultKDF when set by TestUseLowSecurityKDFParameters.
var testKDF *KDFParams

// TestUseLowSecurityKDFParameters makes new key files use very cheap KDF
// parameters. Only for tests: such keys are easy to brute-force.
func TestUseLowSecurityKDFParameters() {
	testKDF = &KDFParams{Time: 1, Memory: 64, Threads: 1}
}

func (p KDFParams) orDefault() KDFParams {
	if p == (KDFParams{}) {
		if testKDF != nil {
			return *testKDF
		}
		return DefaultKDF
	}
	return p
}

// Limits on KDF parameters read from a key file, so a hostile key file cannot
// make Open allocate unbounded memory or spin forever.
const (
	maxKDFMemory = 4 << 20 // KiB = 4 GiB
	maxKDFTime   = 100
	saltSize     = 32
)

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.Memory < 8 || p.Memory > maxKDFMemory || p.Threads < 1 {
		return fmt.Errorf("invalid argon2id parameters time=%d memory=%d threads=%d", p.Time, p.Memory, p.Threads)
	}
	return nil
}

// keyFile is the stored (plaintext JSON) form of a key.
type keyFile struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname,omitempty"`
	Username string    `json:"username,omitempty"`
	KDF      string    `json:"kdf"`
	Time     uint32    `json:"time"`
	Memory   uint32    `json:"memory"`
	Threads  uint8     `json:"threads"`
	Salt     []byte    `json:"salt"`
	Data     []byte    `json:"data"` // master key JSON sealed with the password key
}

// KeyInfo describes a key file.
type KeyInfo struct {
	ID       ID
	Created  time.Time
	Hostname string
	Username string
	KDF      KDFParams
	Current  bool // the key that opened this repository
}

// parseKeyFile decodes a key file without opening it.
func parseKeyFile(b []byte) (*keyFile, error) {
	var k keyFile
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("decode key file: %w", err)
	}
	if k.Version > FormatVersion {
		return nil, newerFormat("key file", k.Version)
	}
	if k.Version < 1 {
		return nil, fmt.Errorf("decode key file: invalid version %d", k.Version)
	}
	if k.KDF != "argon2id" {
		return nil, fmt.Errorf("decode key file: unknown kdf %q", k.KDF)
	}
	if err := k.params().validate(); err != nil {
		return nil, fmt.Errorf("decode key file: %w", err)
	}
	if len(k.Salt) < 16 || len(k.Salt) > 64 {
		return nil, fmt.Errorf("decode key file: invalid salt length %d", len(k.Salt))
	}
	if len(k.Data) < sealExtra {
		return nil, fmt.Errorf("decode key file: sealed key too short")
	}
	return &k, nil
}

func (k *keyFile) params() KDFParams {
	return KDFParams{Time: k.Time, Memory: k.Memory, Threads: k.Threads}
}

func passwordKey(password string, salt []byte, p KDFParams) []byte {
	k := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keySize)
	if p.Memory >= 16<<10 {
		// argon2id's work memory (48 MiB by default) is garbage now, but it
		// was live at the last collection, which lets the heap grow to twice
		// that before the next one: the command's peak memory would be the
		// KDF's plus its own. Collect it now and give it back to the system.
		debug.FreeOSMemory()
	}
	return k
}

// open unwraps the master key with password.
func (k *keyFile) open(password string) (*masterKey, error) {
	aead, err := chacha20poly1305.NewX(passwordKey(password, k.Salt, k.params()))
	if err != nil {
		return nil, err
	}
	plain, err := openWith(aead, nil, k.Data)
	if err != nil {
		return nil, ErrWrongPassword
	}
	var mk masterKey
	if err := json.Unmarshal(plain, &mk); err != nil || !mk.valid() {
		return nil, fmt.Errorf("decode master key: invalid content")
	}
	return &mk, nil
}

// newKeyFile wraps mk with password.
func newKeyFile(mk *masterKey, password string, p KDFParams, host, user string) ([]byte, error) {
	p = p.orDefault()
	if err := p.validate(); err != nil {
		return nil, err
	}
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(passwordKey(password, salt, p))
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(mk)
	if err != nil {
		return nil, err
	}
	k := keyFile{
		Version:  FormatVersion,
		Created:  time.Now().UTC().Truncate(time.Second),
		Hostname: host,
		Username: user,
		KDF:      "argon2id",
		Time:     p.Time,
		Memory:   p.Memory,
		Threads:  p.Threads,
		Salt:     salt,
		Data:     sealWith(aead, nil, plain),
	}
	return json.MarshalIndent(k, "", "  ")
}

// saveKey writes a new key file for the master key and returns its id.
func saveKey(ctx context.Context, be backend.Backend, mk *masterKey, password string, p KDFParams, host, user string) (ID, error) {
	b, err := newKeyFile(mk, password, p, host, user)
	if err != nil {
		return ID{}, fmt.Errorf("create key: %w", err)
	}
	id := FileID(b)
	if err := be.Save(ctx, backend.Handle{Type: backend.KeyFile, Name: id.String()}, b); err != nil {
		return ID{}, fmt.Errorf("save key: %w", err)
	}
	return id, nil
}

// openKey tries every key file with password. It returns the master key and
// the id of the key file that opened it.
func openKey(ctx context.Context, be backend.Backend, password string) (*masterKey, ID, error) {
	var names []string
	err := be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, ID{}, fmt.Errorf("list keys: %w", err)
	}
	sort.Strings(names)
	var newer, firstErr error
	var damaged []string
	for _, name := range names {
		id, err := ParseID(name)
		if err != nil {
			continue
		}
		b, err := be.Load(ctx, backend.Handle{Type: backend.KeyFile, Name: name}, 0, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ID{}, ctx.Err()
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("load key %s: %w", id.Str(), err)
			}
			continue
		}
		if FileID(b) != id {
			damaged = append(damaged, "keys/"+id.Str())
		}
		kf, err := parseKeyFile(b)
		if errors.Is(err, ErrNewerFormat) {
			newer = fmt.Errorf("key %s: %w", id.Str(), err)
			continue
		}
		if err != nil {
			continue
		}
		mk, err := kf.open(password)
		if err == nil {
			return mk, id, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, ID{}, err
		}
	}
	if newer != nil {
		return nil, ID{}, newer
	}
	if len(names) == 0 && firstErr == nil {
		return nil, ID{}, fmt.Errorf("no key files found: %w", ErrWrongPassword)
	}
	if len(damaged) > 0 {
		return nil, ID{}, fmt.Errorf("%w; damaged key file %s (its content does not match its name): if the password is right, its key is lost, open the repository with another password", ErrWrongPassword, strings.Join(damaged, ", "))
	}
	return nil, ID{}, ErrWrongPassword
}

// Keys lists the key files.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil
		}
		b, err := r.be.Load(ctx, backend.Handle{Type: backend.KeyFile, Name: fi.Name}, 0, 0)
		if err != nil {
			return fmt.Errorf("load key %s: %w", id.Str(), err)
		}
		kf, err := parseKeyFile(b)
		if err != nil {
			return fmt.Errorf("key %s: %w", id.Str(), err)
		}
		out = append(out, KeyInfo{
			ID: id, Created: kf.Created, Hostname: kf.Hostname, Username: kf.Username,
			KDF: kf.params(), Current: id == r.keyID,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// AddKey adds a key file for password and returns its id.
func (r *Repository) AddKey(ctx context.Context, password, host, user string) (ID, error) {
	return saveKey(ctx, r.be, r.key, password, r.kdf, host, user)
}

// RemoveKey removes a key file. It refuses to remove the key that opened
// this repository and the last key.
func (r *Repository) RemoveKey(ctx context.Context, id ID) error {
	if id == r.keyID {
		return fmt.Errorf("remove key %s: it is the key in use; open the repository with another password to remove it", id.Str())
	}
	// Only names are needed: a damaged key file can be removed too.
	keys, err := r.ListFiles(ctx, backend.KeyFile)
	if err != nil {
		return err
	}
	found := false
	for _, k := range keys {
		found = found || k == id
	}
	if !found {
		return fmt.Errorf("remove key %s: %w", id.Str(), backend.ErrNotExist)
	}
	if len(keys) < 2 {
		return fmt.Errorf("remove key %s: it is the last key", id.Str())
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: id.String()}); err != nil {
		return fmt.Errorf("remove key %s: %w", id.Str(), err)
	}
	return nil
}

// ChangePassword replaces the key in use with a key for newPassword: it
// writes the new key file first, then removes the old one. It returns the id
// of the new key.
func (r *Repository) ChangePassword(ctx context.Context, newPassword string) (ID, error) {
	old, err := r.loadKeyFile(ctx, r.keyID)
	if err != nil {
		return ID{}, err
	}
	id, err := saveKey(ctx, r.be, r.key, newPassword, r.kdf, old.Hostname, old.Username)
	if err != nil {
		return ID{}, err
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: r.keyID.String()}); err != nil {
		return id, fmt.Errorf("remove old key %s: %w", r.keyID.Str(), err)
	}
	r.keyID = id
	return id, nil
}

func (r *Repository) loadKeyFile(ctx context.Context, id ID) (*keyFile, error) {
	b, err := r.be.Load(ctx, backend.Handle{Type: backend.KeyFile, Name: id.String()}, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", id.Str(), err)
	}
	return parseKeyFile(b)
}
