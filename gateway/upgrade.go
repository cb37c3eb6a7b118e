package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/pipe"
)

// SessionState is what a piped session carries to another process at a
// binary upgrade, besides its pipe (pipe.Detached, whose Tag is ID): what
// its log line says, and the pool lease to renew there. It holds no
// secret.
type SessionState struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol"`
	Client   string `json:"client"`
	Account  string `json:"account"`
	// BackendAccount: SessionInfo's; "" from a process before it.
	BackendAccount string `json:"backend_account,omitempty"`
	Backend        string `json:"backend"`
	ClientTLS      bool   `json:"client_tls"`
	BackendTLS     bool   `json:"backend_tls"`
	Pool           string `json:"pool,omitempty"`
	PoolUser       string `json:"pool_user,omitempty"`
	// Peer is the address the connection limits count the session
	// against: the connection's own peer, a proxy in front when XCLIENT
	// named the client (Client); "" from a process before it: Client's.
	Peer string `json:"peer,omitempty"`
	// Start is when the client connected, which the session's logged
	// duration counts from; zero from a process before it (the duration
	// then counts from the pipe's start).
	Start time.Time `json:"start,omitzero"`
	// Kicked: an administrator kicked the session (Server.Kick) after its
	// pipe left, too late to stop it here; the adopting Server ends it.
	Kicked bool `json:"kicked,omitempty"`
}

// Leaving returns the state of the piped session whose pipe has tag (a
// pipe.Detached's Tag), if it is one of s's: sent along with the pipe, it
// lets the other process carry the session on (Adopt). Call Left once it
// was sent, or Stayed if it could not be. Until then Kick passes it by:
// it goes on in the other process.
func (s *Server) Leaving(tag string) (SessionState, bool) {
	s.mu.Lock()
	ps := s.pipedSessions[tag]
	if ps != nil {
		ps.leaving = true
	}
	s.mu.Unlock()
	if ps == nil {
		return SessionState{}, false
	}
	e := ps.entry
	cause := ps.kick.Load() // read after leaving is set: a Kick either came before, or passes it by
	st := SessionState{
		ID: ps.id, Protocol: e.protocol, Client: e.client, Account: e.account, BackendAccount: e.backendAccount, Backend: e.backend,
		ClientTLS: e.clientTLS, BackendTLS: e.backendTLS, Pool: ps.pool, PoolUser: ps.poolUser,
		Start: e.start, Kicked: cause != nil && *cause == errAdminKick,
	}
	if ps.slotAddr.IsValid() {
		st.Peer = ps.slotAddr.String()
	}
	return st, true
}

// Left forgets the session whose pipe has tag: it went on in another
// process, which logs it when it ends. Here it gives back what it held
// (the connection slot, the pool lease), without a log line, and stops
// counting for Shutdown.
func (s *Server) Left(tag string) {
	ps := s.forget(tag)
	if ps == nil {
		return
	}
	ps.releaseAll()
	s.piped.Done() // its afterClose never runs here
}

// Stayed says that the session whose state Leaving gave did not leave
// (sending it failed): its pipe goes on here, and Kick ends it again.
func (s *Server) Stayed(tag string) {
	s.mu.Lock()
	if ps := s.pipedSessions[tag]; ps != nil {
		ps.leaving = false
	}
	s.mu.Unlock()
}

// errNoEngine: a session can only be adopted onto an Engine.
var errNoEngine = errors.New("gateway: adopting a session needs Server.Engine")

// Adopt carries on here a piped session that another process sent (a
// binary upgrade): its pipe d goes on on s.Engine, logged when it ends,
// with the totals of both processes. A pool session renews its lease on
// the user's assignment here; should the user have been moved meanwhile
// (or the lease cannot be had), the session is ended with the protocol's
// farewell rather than kept on a member the user is no longer on. On
// error d's sockets are closed.
func (s *Server) Adopt(ctx context.Context, d *pipe.Detached, st SessionState) error {
	s.init()
	if s.Engine == nil {
		d.Wipe()
		return errNoEngine
	}
	ps := &pipedSession{
		srv: s, id: st.ID, release: func() {}, pool: st.Pool, poolUser: st.PoolUser,
		entry: logEntry{
			log: s.logger().With("session", st.ID), start: st.Start, protocol: s.name(),
			client: st.Client, account: st.Account, backendAccount: st.BackendAccount, backend: st.Backend,
			clientTLS: st.ClientTLS, backendTLS: st.BackendTLS,
		},
	}
	slot, err := netip.ParseAddr(st.Peer)
	if err != nil { // from a process before Peer: the client's address
		ap, _ := netip.ParseAddrPort(st.Client)
		slot = ap.Addr()
	}
	if slot.IsValid() && s.Conns != nil {
		if rel, err := s.Conns.Acquire(slot); err == nil {
			ps.release, ps.slotAddr = rel, slot
		}
	}
	if !s.register(ps) {
		ps.release()
		d.Wipe()
		return fmt.Errorf("gateway: adopt session %s: a session with this ID is here already", st.ID)
	}
	moved := false
	if st.Pool != "" {
		ps.lease, moved = s.renewLease(ctx, st)
	}
	s.Metrics.sessionStarted()
	s.piped.Add(1)
	after := func(r pipe.Result) {
		defer s.piped.Done()
		ps.ended(r)
	}
	h, err := s.Engine.Adopt(d, after)
	if err != nil {
		s.forget(ps.id)
		ps.releaseAll()
		s.piped.Done()
		return fmt.Errorf("gateway: adopt session %s: %w", st.ID, err)
	}
	ps.started(h)
	switch {
	case st.Kicked:
		ps.kick.CompareAndSwap(nil, &errAdminKick)
		h.Stop(s.farewell(TextKicked))
	case moved:
		h.Stop(s.farewell(TextMoved))
	}
	return nil
}

// renewLease takes a lease on the user's assignment for an adopted pool
// session; moved is true when the user is no longer on the session's
// member (or no lease can be had: the session must not stay unaccounted).
func (s *Server) renewLease(ctx context.Context, st SessionState) (Lease, bool) {
	log := s.logger().With("session", st.ID)
	if s.Pools == nil {
		log.Warn(s.name()+": adopted session: no pools configured here", "pool", st.Pool)
		return nil, true
	}
	b, l, err := s.Pools.Assign(ctx, st.Pool, st.PoolUser, s.name())
	if err != nil {
		log.Warn(s.name()+": adopted session: pool unavailable, ending it", "pool", st.Pool, "err", err)
		return nil, true
	}
	if b.Addr != st.Backend {
		log.Warn(s.name()+": adopted session: user now on another member, ending it", "pool", st.Pool, "member", b.Addr, "backend", st.Backend)
		l.End()
		return nil, true
	}
	if err := l.Start(ctx); err != nil {
		log.Warn(s.name()+": adopted session: lease refused, ending it", "pool", st.Pool, "err", err)
		l.End()
		return nil, true
	}
	return l, false
}

// Quiesce stops accepting and waits, within ctx, until the sessions still
// in their pre-login dialogue have logged in (and entered the pipe) or
// ended: they finish here, undisturbed (give ctx the login timeout); the
// piped sessions go on. It is the first step of a hand-over to another
// process, which serves the listeners from then on: Quiesce closes this
// Server's copies of them. Shutdown later waits for the piped sessions that stayed.
func (s *Server) Quiesce(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	errs := s.stopAcceptingLocked()
	s.mu.Unlock()
	if !waitCtx(ctx, &s.preLogin) {
		errs = append(errs, fmt.Errorf("%s: pre-login sessions still running: %w", s.name(), ctx.Err()))
	}
	return errors.Join(errs...)
}
