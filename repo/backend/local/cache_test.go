package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/local"
)

// TestOpenPackCache checks that the pack files kept open between loads never
// hide a change made through the file system or by Remove.
func TestOpenPackCache(t *testing.T) {
	ctx := context.Background()
	be := local.New(t.TempDir())
	defer be.Close()
	h := backend.Handle{Type: backend.PackFile, Name: "cd" + strings.Repeat("1", 62)}
	if err := be.Save(ctx, h, []byte("first content")); err != nil {
		t.Fatal(err)
	}
	load := func() string {
		t.Helper()
		b, err := be.Load(ctx, h, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := load(); got != "first content" {
		t.Fatalf("got %q", got)
	}
	// Replaced behind the backend's back by a rename: the new file is read.
	tmp := be.Path(h) + ".new"
	if err := os.WriteFile(tmp, []byte("other content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, be.Path(h)); err != nil {
		t.Fatal(err)
	}
	if got := load(); got != "other content" {
		t.Fatalf("after replace: got %q", got)
	}
	// Removed behind the backend's back.
	if err := os.Remove(be.Path(h)); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Load(ctx, h, 0, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after external remove: %v", err)
	}
	// Removed through the backend while cached.
	if err := be.Save(ctx, h, []byte("third content")); err != nil {
		t.Fatal(err)
	}
	load()
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Load(ctx, h, 0, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Remove: %v", err)
	}
	// Close drops the open files; the backend stays usable.
	if err := be.Save(ctx, h, []byte("fourth content")); err != nil {
		t.Fatal(err)
	}
	load()
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	if got := load(); got != "fourth content" {
		t.Fatalf("after Close: got %q", got)
	}
}

// TestOpenPackCacheEviction loads from more packs than are kept open.
func TestOpenPackCacheEviction(t *testing.T) {
	ctx := context.Background()
	be := local.New(t.TempDir())
	defer be.Close()
	var hs []backend.Handle
	for i := range 100 {
		h := backend.Handle{Type: backend.PackFile, Name: fmt.Sprintf("%064x", i)}
		if err := be.Save(ctx, h, []byte(fmt.Sprintf("pack %d", i))); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for round := range 3 {
		for i, h := range hs {
			buf := make([]byte, len(fmt.Sprintf("pack %d", i)))
			if err := be.LoadInto(ctx, h, 0, buf); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("pack %d", i); string(buf) != want {
				t.Fatalf("round %d: got %q, want %q", round, buf, want)
			}
		}
	}
	if err := be.LoadInto(ctx, hs[0], 3, make([]byte, 10)); err == nil {
		t.Fatal("LoadInto beyond the end succeeded")
	}
	if err := be.LoadInto(ctx, hs[0], 0, nil); err == nil {
		t.Fatal("LoadInto with an empty buffer succeeded")
	}
}

// BenchmarkLoadBlob reads 256 KiB pieces from 8 packs of 16 MiB, as a
// restore does: Load allocates a buffer and (before the cache of open packs)
// opened the pack for every piece; LoadInto reads into the caller's buffer.
func BenchmarkLoadBlob(b *testing.B) {
	ctx := context.Background()
	be := local.New(b.TempDir())
	defer be.Close()
	const packSize, piece = 16 << 20, 256 << 10
	var hs []backend.Handle
	data := bytes.Repeat([]byte("0123456789abcdef"), packSize/16)
	for i := range 8 {
		h := backend.Handle{Type: backend.PackFile, Name: fmt.Sprintf("%064x", i)}
		if err := be.Save(ctx, h, data); err != nil {
			b.Fatal(err)
		}
		hs = append(hs, h)
	}
	run := func(b *testing.B, load func(h backend.Handle, off int64, buf []byte) error) {
		b.SetBytes(piece)
		buf := make([]byte, piece)
		i := 0
		for b.Loop() {
			h := hs[i%len(hs)]
			off := int64(i/len(hs)%(packSize/piece)) * piece
			if err := load(h, off, buf); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("Load", func(b *testing.B) {
		run(b, func(h backend.Handle, off int64, buf []byte) error {
			got, err := be.Load(ctx, h, off, int64(len(buf)))
			copy(buf, got)
			return err
		})
	})
	b.Run("LoadInto", func(b *testing.B) {
		run(b, func(h backend.Handle, off int64, buf []byte) error { return be.LoadInto(ctx, h, off, buf) })
	})
}
