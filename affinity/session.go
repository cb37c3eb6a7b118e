package affinity

import (
	"context"
	"fmt"
)

// SessionStart counts the lease's session once the backend accepted the
// login, so that the user keeps its member while the session lives (on
// any instance). It fails, and the gateway must close the session, when
// the assignment changed meanwhile (ErrLost), a move runs (ErrMoving), or
// Redis or this instance's registration is unavailable (ErrUnavailable).
// Call SessionEnd in every case.
func (s *Store) SessionStart(ctx context.Context, l *Lease) error {
	s.mu.Lock()
	id, joined := s.id, s.joined
	ended := l.ended
	s.mu.Unlock()
	if ended {
		return fmt.Errorf("affinity: session start for %q: lease already ended", l.user)
	}
	select {
	case <-l.kicked:
		return fmt.Errorf("%w: %q", ErrMoving, l.user)
	default:
	}
	if !joined {
		return fmt.Errorf("%w: session start for %q: this instance has not joined pool %q (is Subscribe running?)", ErrUnavailable, l.user, s.cfg.Pool)
	}
	res, err := scriptStart.Run(ctx, s.rdb, []string{s.k.user(l.user), s.k.inst(), s.k.index(id), s.k.load(id)},
		id, l.member, l.user, l.login).Text()
	if err != nil {
		// The script may have run and its answer got lost: the next
		// heartbeat writes the count this instance really has.
		s.mu.Lock()
		s.dirty[l.user] = struct{}{}
		s.mu.Unlock()
		return unavailable("session start", l.user, err)
	}
	switch res {
	case "ok":
	case "moving":
		return fmt.Errorf("%w: %q", ErrMoving, l.user)
	case "lost":
		return fmt.Errorf("%w: %q was assigned to %q", ErrLost, l.user, l.member)
	default:
		return fmt.Errorf("%w: session start for %q: instance %s is not alive in pool %q", ErrUnavailable, l.user, id, s.cfg.Pool)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.ended { // SessionEnd ran meanwhile: undo at the next heartbeat
		s.dirty[l.user] = struct{}{}
		return fmt.Errorf("affinity: session start for %q: lease ended meanwhile", l.user)
	}
	l.started = true
	s.loads[l.member]++
	return nil
}

// SessionEnd ends the lease: call it once the connection is gone, whether
// or not the session started (a second call does nothing). The last
// session of a user starts the assignment's expiry; a login that ended
// without a session stops holding the user. If Redis cannot be told, the
// instance corrects its count at the next heartbeat, and a login's hold
// lapses after Config.Lease.
func (s *Store) SessionEnd(ctx context.Context, l *Lease) error {
	s.mu.Lock()
	first := !l.ended
	started := s.dropLease(l)
	id := s.id
	_, dirty := s.dirty[l.user]
	s.mu.Unlock()
	if first && !started && l.recorded {
		return s.abandon(ctx, l)
	}
	if !started || dirty {
		return nil
	}
	err := scriptEnd.Run(ctx, s.rdb, []string{s.k.user(l.user), s.k.inst(), s.k.index(id), s.k.load(id)},
		id, l.member, l.user, ms(s.cfg.Expire)).Err()
	if err != nil {
		s.mu.Lock()
		s.dirty[l.user] = struct{}{}
		s.mu.Unlock()
		return unavailable("session end", l.user, err)
	}
	return nil
}

// release forgets a lease that never got a member (Assign failed).
func (s *Store) release(ctx context.Context, l *Lease) {
	s.mu.Lock()
	s.dropLease(l)
	s.mu.Unlock()
	if l.recorded {
		_ = s.abandon(context.WithoutCancel(ctx), l) // else it lapses after Config.Lease
	}
}

// abandon removes the record of l's login, which ended without a session.
func (s *Store) abandon(ctx context.Context, l *Lease) error {
	err := scriptAbandon.Run(ctx, s.rdb, []string{s.k.user(l.user), s.k.inst()}, l.login, ms(s.cfg.Expire)).Err()
	if err != nil {
		return unavailable("end login", l.user, err)
	}
	return nil
}
