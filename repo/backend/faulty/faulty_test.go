package faulty_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bunkerbackup/bunker/repo/backend"
	"github.com/bunkerbackup/bunker/repo/backend/backendtest"
	"github.com/bunkerbackup/bunker/repo/backend/faulty"
	"github.com/bunkerbackup/bunker/repo/backend/mem"
)

func TestConformanceWithoutRules(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return faulty.New(mem.New()) })
}

func TestRules(t *testing.T) {
	ctx := context.Background()
	inner := mem.New()
	be := faulty.New(inner)
	boom := errors.New("boom")
	be.Add(faulty.Rule{Method: faulty.Save, Type: backend.PackFile, After: 2, Times: 1, Err: boom})
	be.Add(faulty.Rule{Method: faulty.Save, Type: backend.IndexFile, Persist: true})
	h := func(n string) backend.Handle { return backend.Handle{Type: backend.PackFile, Name: n} }
	for i, want := range []error{nil, nil, boom, nil} {
		err := be.Save(ctx, h(string(rune('a'+i))), []byte("x"))
		if !errors.Is(err, want) {
			t.Fatalf("save %d: got %v, want %v", i, err, want)
		}
	}
	if _, err := inner.Stat(ctx, h("c")); !errors.Is(err, backend.ErrNotExist) {
		t.Fatal("failed save stored the file")
	}
	ih := backend.Handle{Type: backend.IndexFile, Name: "i"}
	if err := be.Save(ctx, ih, []byte("x")); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("persisting fault: %v", err)
	}
	if _, err := inner.Stat(ctx, ih); err != nil {
		t.Fatalf("persisting fault did not store: %v", err)
	}
	if be.Calls(faulty.Save) != 5 {
		t.Fatalf("calls = %d", be.Calls(faulty.Save))
	}
	be.Clear()
	if err := be.Save(ctx, ih, []byte("x")); err != nil {
		t.Fatal(err)
	}
}
