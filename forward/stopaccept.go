package forward

import (
	"context"
	"errors"
	"sync"

	"github.com/pipegate/pipegate/pipe"
)

// Stopping accepting without aborting anything: the first half of a
// binary upgrade's hand-over, where another process accepts on the same
// sockets. A connection the kernel gave this process is served here: its
// set-up (PROXY header, TLS handshake, upstream dial) is not cut short as
// Shutdown's is. Shutdown then drains.

// StopAccepting closes the server's listeners and waits until its accept
// loops have returned and the connections they accepted are set up
// (piped, or refused on their own merits), or ctx ends. It aborts
// nothing; Shutdown follows. Pairs the event loops accepted are in the
// engine already: Shutdown drains them.
func (s *Server) StopAccepting(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopped {
		close(s.stopAccept)
	}
	s.stopped = true
	for ln := range s.listeners {
		ln.Close()
	}
	loopListeners := s.loopListeners
	s.loopListeners = map[*pipe.Listener]struct{}{}
	s.mu.Unlock()
	for pl := range loopListeners { // once closed, no hand-off to handleConn follows
		pl.Close()
	}
	for {
		s.mu.Lock()
		if s.goAccepts == 0 && s.settingUp == 0 {
			s.mu.Unlock()
			return nil
		}
		if s.settled == nil {
			s.settled = make(chan struct{})
		}
		settled := s.settled
		s.mu.Unlock()
		select {
		case <-settled:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// enterGoAccept counts a Go accept loop in; false after StopAccepting.
func (s *Server) enterGoAccept() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.shutting {
		return false
	}
	s.goAccepts++
	return true
}

func (s *Server) leaveGoAccept() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goAccepts--
	s.settleLocked()
}

// setUp counts a connection out of handleConn.
func (s *Server) setUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settingUp--
	s.settleLocked()
}

// settleLocked wakes StopAccepting.
func (s *Server) settleLocked() {
	if s.settled != nil {
		close(s.settled)
		s.settled = nil
	}
}

func (s *Server) acceptStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// StopAccepting stops accepting on every running forward (Server.
// StopAccepting) and waits for their set-ups or ctx. Later Applies are
// refused; Shutdown drains.
func (s *Set) StopAccepting(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers := make([]*Server, 0, len(s.servers))
	for _, r := range s.servers {
		servers = append(servers, r.srv)
	}
	s.mu.Unlock()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Add(1)
		go stopAcceptingInSet(ctx, srv, &errs[i], &wg)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopAcceptingInSet is the goroutine stopping one forward of a Set.
func stopAcceptingInSet(ctx context.Context, srv *Server, err *error, wg *sync.WaitGroup) {
	defer wg.Done()
	*err = srv.StopAccepting(ctx)
}

// StopAccepting stops accepting on every forward and waits until the
// connections accepted are set up or ctx ends, aborting none: for a
// binary upgrade, before Run's context ends and the drain begins. The
// metrics endpoint goes on.
func (d *Daemon) StopAccepting(ctx context.Context) error {
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if !started {
		return nil
	}
	return d.set.StopAccepting(ctx)
}
