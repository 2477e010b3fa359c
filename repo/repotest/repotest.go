// Package repotest provides test helpers for code that uses repositories:
// a fresh repository on an in-memory or temporary local backend with cheap
// key derivation.
package repotest

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/repo"
	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/local"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
)

// Password is the password of repositories made by this package.
const Password = "test password"

// New returns a new repository in memory.
func New(t testing.TB) *repo.Repository {
	t.Helper()
	return NewOn(t, mem.New())
}

// NewLocal returns a new repository in a temporary directory, and the
// directory.
func NewLocal(t testing.TB) (*repo.Repository, string) {
	t.Helper()
	dir := t.TempDir()
	return NewOn(t, local.New(dir)), dir
}

// NewOn initialises a repository on be with Password and cheap KDF
// parameters.
func NewOn(t testing.TB, be backend.Backend) *repo.Repository {
	t.Helper()
	repo.TestUseLowSecurityKDFParameters()
	r, err := repo.Init(context.Background(), be, Password, repo.InitOptions{Hostname: "testhost", Username: "tester"})
	if err != nil {
		t.Fatalf("init repository: %v", err)
	}
	return r
}

// Reopen opens the repository of r again, as a new process would.
func Reopen(t testing.TB, r *repo.Repository) *repo.Repository {
	t.Helper()
	r2, err := repo.Open(context.Background(), r.Backend(), Password)
	if err != nil {
		t.Fatalf("reopen repository: %v", err)
	}
	return r2
}

// Random returns n pseudo-random bytes derived from seed.
func Random(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// WriteFile writes data to p, creating its parent directories.
func WriteFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
