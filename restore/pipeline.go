package restore

import (
	"context"
	"errors"
	"sync"
)

// errStop ends a generator early without an error.
var errStop = errors.New("stop")

// ordered runs fn over the items produced by gen on a pool of workers and
// hands each item with its result to sink in the order gen produced them.
// At most window items are in flight, which bounds memory. An error from gen
// or sink, or the cancellation of ctx, stops the pipeline; fn reports its
// per-item errors through its result. The context given to fn and gen is
// cancelled when the pipeline stops.
func ordered[T, R any](ctx context.Context, workers, window int,
	gen func(ctx context.Context, emit func(T) error) error,
	fn func(context.Context, T) R,
	sink func(T, R) error) error {

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type slot struct {
		item T
		res  R
		done chan struct{}
	}
	jobs := make(chan *slot)
	queue := make(chan *slot, max(window, 1))
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				s.res = fn(ctx, s.item)
				close(s.done)
			}
		}()
	}
	genErr := make(chan error, 1)
	go func() {
		defer close(queue)
		defer close(jobs)
		err := gen(ctx, func(t T) error {
			s := &slot{item: t, done: make(chan struct{})}
			select {
			case queue <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		})
		if errors.Is(err, errStop) {
			err = nil
		}
		genErr <- err
	}()

	var sinkErr error
	for s := range queue {
		if sinkErr != nil {
			continue
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			continue
		}
		if err := sink(s.item, s.res); err != nil {
			sinkErr = err
			cancel()
		}
	}
	wg.Wait()
	gerr := <-genErr
	if sinkErr != nil {
		return sinkErr
	}
	if gerr != nil {
		return gerr
	}
	return parent.Err()
}
