package affinity

import (
	"strconv"
	"sync"
)

// Lease is one login's hold on a user's assignment, from Assign to
// SessionEnd. Its Kicked channel closes when a move of the user needs the
// connection gone, or when this instance's heartbeats stopped reaching
// Redis (see Subscribe); Cause says which. The gateway then closes the
// connection with the protocol's goodbye (IMAP BYE) and calls SessionEnd.
type Lease struct {
	user, member string
	login        string // its field in the user's hash while the login runs (p:...)

	kickOnce sync.Once
	kicked   chan struct{}
	cause    error // why, once kicked is closed

	kickMu sync.Mutex
	onKick []func() // OnKick's, until the kick
	fired  bool

	// guarded by Store.mu
	recorded bool // Redis holds the login under login
	started  bool
	ended    bool
}

// User returns the user the lease is for.
func (l *Lease) User() string { return l.user }

// Member returns the member the user is assigned to.
func (l *Lease) Member() string { return l.member }

// Kicked is closed when the user's sessions must end here.
func (l *Lease) Kicked() <-chan struct{} { return l.kicked }

// Cause says why the lease was kicked (nil before): an error wrapping
// ErrMoving when the user moves to another member (or was found assigned
// to another one), ErrUnavailable when this instance lost Redis for
// longer than the outage grace and can no longer vouch for the user's
// assignment.
func (l *Lease) Cause() error {
	select {
	case <-l.kicked:
		return l.cause
	default:
		return nil
	}
}

// OnKick calls f once when the lease is kicked (at once if it was), on
// the goroutine that kicks: f must not block. It suits a gateway that
// ends a piped session without a goroutine per session waiting on
// Kicked.
func (l *Lease) OnKick(f func()) {
	l.kickMu.Lock()
	if !l.fired {
		l.onKick = append(l.onKick, f)
		l.kickMu.Unlock()
		return
	}
	l.kickMu.Unlock()
	f()
}

// kick ends the lease's connection for cause; the first cause stays.
func (l *Lease) kick(cause error) {
	l.kickOnce.Do(func() {
		l.cause = cause
		close(l.kicked)
		l.kickMu.Lock()
		fs := l.onKick
		l.onKick, l.fired = nil, true
		l.kickMu.Unlock()
		for _, f := range fs {
			f()
		}
	})
}

// local is what this instance holds of one user: its leases (logins in
// progress and sessions), so that a kick reaches them and can wait for
// them to end.
type local struct {
	leases map[*Lease]struct{}
	empty  chan struct{} // closed when the last lease ends
}

// addLease registers a new lease before Redis is asked, so that a kick
// arriving meanwhile finds it.
func (s *Store) addLease(user string) *Lease {
	l := &Lease{user: user, kicked: make(chan struct{}),
		login: "p:" + s.base + "." + strconv.FormatUint(s.leaseSeq.Add(1), 10)}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.users[user]
	if e == nil {
		e = &local{leases: make(map[*Lease]struct{}), empty: make(chan struct{})}
		s.users[user] = e
	}
	e.leases[l] = struct{}{}
	return l
}

// dropLease forgets l; s.mu is held. It reports whether l had started.
func (s *Store) dropLease(l *Lease) (started bool) {
	if l.ended {
		return false
	}
	l.ended = true
	if l.started {
		s.loads[l.member]--
		if s.loads[l.member] <= 0 {
			delete(s.loads, l.member)
		}
	}
	if e := s.users[l.user]; e != nil {
		delete(e.leases, l)
		if len(e.leases) == 0 {
			close(e.empty)
			delete(s.users, l.user)
		}
	}
	return l.started
}

// localCount returns this instance's started sessions of user and their
// member; s.mu is held.
func (s *Store) localCount(user string) (n int, member string) {
	e := s.users[user]
	if e == nil {
		return 0, ""
	}
	for l := range e.leases {
		if l.started {
			n++
			member = l.member
		}
	}
	return n, member
}
