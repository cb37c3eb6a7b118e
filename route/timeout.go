package route

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WithTimeout bounds each lookup through r to d. The source gets a context
// with that deadline; if it does not return by then (even one that ignores
// its context), the lookup fails at once with an error that wraps
// context.DeadlineExceeded, and the source's late answer is dropped.
// d <= 0 returns r unchanged.
func WithTimeout(r Router, d time.Duration) Router {
	if d <= 0 {
		return r
	}
	return timeoutRouter{r: r, d: d}
}

type timeoutRouter struct {
	r Router
	d time.Duration
}

type lookupResult struct {
	rt  Route
	err error
}

func (t timeoutRouter) Lookup(ctx context.Context, req Request) (Route, error) {
	lctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	done := make(chan lookupResult, 1) // buffered: a late answer never blocks the source
	go runLookup(lctx, t.r, req, done)
	select {
	case res := <-done:
		if res.err != nil && ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
			return Route{}, t.timeoutError(req, res.err)
		}
		return res.rt, res.err
	case <-lctx.Done():
		if err := ctx.Err(); err != nil {
			return Route{}, fmt.Errorf("route: lookup for %q: %w", req.Account, err)
		}
		return Route{}, t.timeoutError(req, nil)
	}
}

func (t timeoutRouter) timeoutError(req Request, cause error) error {
	if cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("route: lookup for %q: no answer within %v (%v): %w", req.Account, t.d, cause, context.DeadlineExceeded)
	}
	return fmt.Errorf("route: lookup for %q: no answer within %v: %w", req.Account, t.d, context.DeadlineExceeded)
}

// runLookup is the goroutine that asks a source on behalf of WithTimeout.
func runLookup(ctx context.Context, r Router, req Request, done chan<- lookupResult) {
	rt, err := r.Lookup(ctx, req)
	done <- lookupResult{rt, err}
}
