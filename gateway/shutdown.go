package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

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
	deadline, ok := ctx.Deadline()
	spread := s.DrainSpread
	if !ok || spread <= 0 || s.Engine == nil {
		return waitCtx(ctx, &s.piped)
	}
	if left := time.Until(deadline); spread > left {
		spread = left
	}
	early, cancel := context.WithDeadline(ctx, deadline.Add(-spread))
	done := waitCtx(early, &s.piped)
	cancel()
	if done || ctx.Err() != nil {
		return done
	}
	s.mu.Lock()
	hs := make([]*pipe.Handle, 0, len(s.pipedSessions))
	for _, ps := range s.pipedSessions {
		if ps.h != nil {
			hs = append(hs, ps.h)
		}
	}
	s.mu.Unlock()
	var farewell []byte
	if f, ok := s.Protocol.(Farewell); ok {
		farewell = f.Farewell(TextShutdown)
	}
	s.logger().Info(s.name()+": closing the sessions left, spread", "sessions", len(hs), "window", spread.String())
	step := spread / time.Duration(len(hs)+1)
	for _, h := range hs {
		h.Stop(farewell)
		select {
		case <-time.After(step):
		case <-ctx.Done():
			return waitCtx(ctx, &s.piped)
		}
	}
	return waitCtx(ctx, &s.piped)
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
