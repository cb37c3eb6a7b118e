package route

import (
	"context"
	"errors"
	"slices"
)

// Chain asks sources in order and returns the first answer. A source that
// returns ErrNotFound passes the request on to the next; any other error
// (a *Denied, or a source that is down) ends the lookup with that error,
// unless the source is wrapped in ContinueOnError. When no source answers,
// Chain returns ErrNotFound.
func Chain(sources ...Router) Router { return chain(slices.Clone(sources)) }

type chain []Router

func (c chain) Lookup(ctx context.Context, req Request) (Route, error) {
	var skipped error
	for _, src := range c {
		rt, err := src.Lookup(ctx, req)
		if err == nil {
			return rt, nil
		}
		var se *skippedError
		switch {
		case errors.As(err, &se):
			if skipped == nil {
				skipped = se.err
			}
			if ctx.Err() != nil {
				return Route{}, skipped
			}
		case errors.Is(err, ErrNotFound):
		default:
			return Route{}, err
		}
	}
	if skipped != nil {
		// A failed source might have known the account: unavailable, not unknown.
		return Route{}, skipped
	}
	return Route{}, ErrNotFound
}

// ContinueOnError marks r as a source a Chain may pass over when it fails
// (is down, times out): the chain then asks the next source, and only if no
// later source answers does the lookup fail with r's error. A *Denied from r
// still ends the chain. Outside a Chain the wrapper changes nothing.
//
// Use it for a source that only speeds things up, such as a Redis copy of
// the directory in front of LDAP.
func ContinueOnError(r Router) Router { return continueOnError{r} }

type continueOnError struct{ r Router }

func (c continueOnError) Lookup(ctx context.Context, req Request) (Route, error) {
	rt, err := c.r.Lookup(ctx, req)
	if err == nil || errors.Is(err, ErrNotFound) {
		return rt, err
	}
	var d *Denied
	if errors.As(err, &d) {
		return rt, err
	}
	return rt, &skippedError{err}
}

// skippedError carries a failure a Chain may step over.
type skippedError struct{ err error }

func (e *skippedError) Error() string { return e.err.Error() }
func (e *skippedError) Unwrap() error { return e.err }
