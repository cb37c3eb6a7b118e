package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pipegate/pipegate/internal/drain"
	"github.com/pipegate/pipegate/pipe"
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
	errs := s.stopAcceptingLocked()
	s.stopping = true
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
	if !s.waitPiped(ctx) {
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

// stopAcceptingLocked marks s closing and closes its listeners; s.mu is
// held. It returns the errors of the closes.
func (s *Server) stopAcceptingLocked() []error {
	s.closing = true
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("%s: close listener %s: %w", s.name(), l.Addr(), err))
		}
	}
	return errs
}

// waitPiped waits for the piped sessions within ctx. With DrainSpread
// and a deadline, those still open DrainSpread before it are stopped one
// after the other over that window, each with the protocol's farewell,
// so that their clients do not all reconnect at the same instant.
func (s *Server) waitPiped(ctx context.Context) bool {
	done := make(chan struct{})
	go waitGroupCloser(&s.piped, done)
	if s.Engine != nil {
		drain.Spread{Window: s.DrainSpread, Open: s.pipedHandles, Farewell: s.farewell(TextShutdown), Started: func(n int, window time.Duration) {
			s.logger().Info(s.name()+": closing the sessions left, spread", "sessions", n, "window", window.String())
		}}.Run(ctx, done)
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// pipedHandles returns the Handles of the piped sessions open now.
func (s *Server) pipedHandles() []*pipe.Handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := make([]*pipe.Handle, 0, len(s.pipedSessions))
	for _, ps := range s.pipedSessions {
		if ps.h != nil {
			hs = append(hs, ps.h)
		}
	}
	return hs
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
