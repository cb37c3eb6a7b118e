package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Shutdown stops accepting, lets the protocol tell idle pre-login clients
// goodbye, lets logins in progress finish, then waits for the logged-in
// sessions to end. When ctx ends first, the pre-login sessions left are
// closed, and ctx's error returned.
//
// The logged-in sessions left at ctx's end are stopped when the Server
// runs them itself (Engine nil). A Server never shuts down an Engine it
// was handed, which may carry other Servers' sessions: whoever made the
// Engine stops what is left by calling Engine.Shutdown with an ended
// context once the Servers' Shutdown returned, as cmd/pipegate does:
//
//	err := srv.Shutdown(ctx) // every Server on the Engine
//	_ = engine.Shutdown(ctx) // ctx ended: stops the pipes left, waits for their log lines
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing = true
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("%s: close listener %s: %w", s.name(), l.Addr(), err))
		}
	}
	for ss := range s.sessions {
		ss.interrupt()
	}
	s.mu.Unlock()

	forced := false
	if !waitCtx(ctx, &s.preLogin) {
		forced = true
		s.cancel() // ends Penalty waits, backend dials and logins
		s.mu.Lock()
		for ss := range s.sessions {
			ss.forceClose()
		}
		s.mu.Unlock()
		s.preLogin.Wait()
	}
	if !waitCtx(ctx, &s.piped) {
		forced = true
		s.cancel() // ends pipe.Join of sessions run without an Engine
		if s.Engine == nil {
			s.piped.Wait()
		}
	}
	s.cancel()
	if forced && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// waitCtx waits for wg or ctx, whichever is first; true if wg finished.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go waitGroupCloser(wg, done)
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func waitGroupCloser(wg *sync.WaitGroup, done chan<- struct{}) {
	wg.Wait()
	close(done)
}
