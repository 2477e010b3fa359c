package backup

import (
	"context"
	"testing"
	"time"
)

func TestByteBudget(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var q byteBudget
	q.init(ctx, 10)
	// A request larger than the budget passes when nothing is held.
	if !q.acquire(25) {
		t.Fatal("acquire of 25 bytes with nothing held failed")
	}
	got := make(chan bool)
	go func() { got <- q.acquire(4) }()
	select {
	case <-got:
		t.Fatal("acquire beyond the budget did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	q.release(25)
	if !<-got {
		t.Fatal("acquire after release failed")
	}
	if !q.acquire(6) {
		t.Fatal("acquire within the budget failed")
	}
	go func() { got <- q.acquire(1) }()
	select {
	case <-got:
		t.Fatal("acquire beyond the budget did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if <-got {
		t.Fatal("acquire succeeded after cancellation")
	}
	if q.used != 10 {
		t.Fatalf("%d bytes held, want 10", q.used)
	}
}
