// Package backendtest is the conformance suite every backend passes: the
// contracts documented in package backend, tested the same way for each
// implementation.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/repo/backend"
)

var allTypes = []backend.FileType{backend.KeyFile, backend.SnapshotFile, backend.IndexFile, backend.PackFile, backend.LockFile, backend.ProtectFile, backend.HistoryFile}

func name(i int) string { return fmt.Sprintf("%02x%062x", i%256, i) }

// Run runs the suite. newBackend returns an empty backend for each subtest.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	ctx := context.Background()

	t.Run("SaveLoad", func(t *testing.T) {
		be := newBackend(t)
		for i, ft := range append(allTypes, backend.ConfigFile) {
			h := backend.Handle{Type: ft, Name: name(i)}
			if ft == backend.ConfigFile {
				h.Name = ""
			}
			data := bytes.Repeat([]byte{byte(i), 1, 2, 3}, 1000+i)
			if err := be.Save(ctx, h, data); err != nil {
				t.Fatalf("save %v: %v", h, err)
			}
			got, err := be.Load(ctx, h, 0, 0)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("load %v: %v", h, err)
			}
			got, err = be.Load(ctx, h, 10, 20)
			if err != nil || !bytes.Equal(got, data[10:30]) {
				t.Fatalf("load range %v: %v", h, err)
			}
			got, err = be.Load(ctx, h, int64(len(data)-5), 0)
			if err != nil || !bytes.Equal(got, data[len(data)-5:]) {
				t.Fatalf("load tail %v: %v", h, err)
			}
			if _, err := be.Load(ctx, h, int64(len(data)-5), 10); err == nil {
				t.Fatalf("load beyond end of %v succeeded", h)
			}
			fi, err := be.Stat(ctx, h)
			if err != nil || fi.Size != int64(len(data)) {
				t.Fatalf("stat %v: %v %d", h, err, fi.Size)
			}
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		be := newBackend(t)
		h := backend.Handle{Type: backend.PackFile, Name: name(1)}
		for range 2 {
			if err := be.Save(ctx, h, []byte("same content")); err != nil {
				t.Fatal(err)
			}
		}
		got, err := be.Load(ctx, h, 0, 0)
		if err != nil || string(got) != "same content" {
			t.Fatalf("load after re-save: %q %v", got, err)
		}
	})

	t.Run("NotExist", func(t *testing.T) {
		be := newBackend(t)
		h := backend.Handle{Type: backend.SnapshotFile, Name: name(7)}
		if _, err := be.Load(ctx, h, 0, 0); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("load missing: %v", err)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("stat missing: %v", err)
		}
		if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("remove missing: %v", err)
		}
		if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("stat missing config: %v", err)
		}
	})

	t.Run("ListRemove", func(t *testing.T) {
		be := newBackend(t)
		want := map[backend.FileType][]string{}
		for i := range 40 {
			ft := allTypes[i%len(allTypes)]
			n := name(i * 37)
			if err := be.Save(ctx, backend.Handle{Type: ft, Name: n}, []byte(n)); err != nil {
				t.Fatal(err)
			}
			want[ft] = append(want[ft], n)
		}
		for _, ft := range allTypes {
			var got []string
			err := be.List(ctx, ft, func(fi backend.FileInfo) error {
				if fi.Size != int64(len(fi.Name)) {
					t.Errorf("list %s: %s has size %d", ft, fi.Name, fi.Size)
				}
				got = append(got, fi.Name)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			sort.Strings(want[ft])
			if fmt.Sprint(got) != fmt.Sprint(want[ft]) {
				t.Errorf("list %s: got %v, want %v", ft, got, want[ft])
			}
		}
		stop := errors.New("stop")
		if err := be.List(ctx, backend.PackFile, func(backend.FileInfo) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("list did not return the callback's error: %v", err)
		}
		for _, ft := range allTypes {
			for _, n := range want[ft] {
				if err := be.Remove(ctx, backend.Handle{Type: ft, Name: n}); err != nil {
					t.Fatal(err)
				}
			}
			cnt := 0
			_ = be.List(ctx, ft, func(backend.FileInfo) error { cnt++; return nil })
			if cnt != 0 {
				t.Errorf("list %s after remove: %d files", ft, cnt)
			}
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		be := newBackend(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		h := backend.Handle{Type: backend.IndexFile, Name: name(3)}
		if err := be.Save(cctx, h, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("save with cancelled context: %v", err)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("cancelled save left a file: %v", err)
		}
		if _, err := be.Load(cctx, h, 0, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("load with cancelled context: %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		be := newBackend(t)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					h := backend.Handle{Type: backend.PackFile, Name: name(g*100 + i)}
					data := bytes.Repeat([]byte{byte(g), byte(i)}, 5000)
					if err := be.Save(ctx, h, data); err != nil {
						t.Error(err)
						return
					}
					got, err := be.Load(ctx, h, 0, 0)
					if err != nil || !bytes.Equal(got, data) {
						t.Errorf("load %v: %v", h, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		n := 0
		_ = be.List(ctx, backend.PackFile, func(backend.FileInfo) error { n++; return nil })
		if n != 80 {
			t.Errorf("listed %d packs, want 80", n)
		}
	})
}
