package gateway

import (
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/pipegate/pipegate/pipe"
)

// pipedSession is a logged-in session in the pipe, as its Server keeps
// it: what its log line says and what it holds (the limits' slot, the
// pool lease) until the pipe ends here or leaves for another process (a
// binary upgrade, see Leaving). Its pipe's tag is the session's ID.
type pipedSession struct {
	srv            *Server
	id             string
	entry          logEntry
	release        func()     // the limit.Conns slot
	slotAddr       netip.Addr // what it counts against (Session.slotAddr)
	lease          Lease      // nil unless from a pool
	pool, poolUser string
	h              *pipe.Handle
	kick           atomic.Pointer[error] // the lease's kick, once it came
	// leaving: its state went to another process (Leaving) and Left or
	// Stayed has not said how that ended; guarded by srv.mu. Kick leaves
	// it alone: it goes on in the other process, if it gets there.
	leaving bool
}

// register counts ps among the Server's piped sessions; false if one
// with its ID is there already (an adopted session's ID comes from the
// other process; a new one's is random).
func (s *Server) register(ps *pipedSession) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pipedSessions == nil {
		s.pipedSessions = map[string]*pipedSession{}
	}
	if _, dup := s.pipedSessions[ps.id]; dup {
		return false
	}
	s.pipedSessions[ps.id] = ps
	return true
}

// forget takes the session with id out of the registry; nil if it is not
// there (any more).
func (s *Server) forget(id string) *pipedSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.pipedSessions[id]
	delete(s.pipedSessions, id)
	return ps
}

// started runs once the pipe runs (h nil: it could not start, and ended
// already): the pipe is tagged for a hand-over, and a move of the user
// ends it with the protocol's goodbye, after what the backend had sent.
func (ps *pipedSession) started(h *pipe.Handle) {
	if h == nil {
		return
	}
	h.SetTag(ps.id)
	ps.srv.mu.Lock()
	ps.h = h
	ps.srv.mu.Unlock()
	if ps.lease == nil {
		return
	}
	moved, lost := ps.srv.farewell(TextMoved), ps.srv.farewell(TextLost)
	ps.lease.OnKick(func(cause error) {
		ps.kick.CompareAndSwap(nil, &cause) // an administrator's kick that came first keeps its cause
		if errors.Is(cause, ErrMoved) {
			h.Stop(moved)
		} else {
			h.Stop(lost)
		}
	})
}

// ended is the pipe's afterClose: the session's end here, logged once.
func (ps *pipedSession) ended(r pipe.Result) {
	ps.srv.forget(ps.id)
	ps.releaseAll()
	reason := r.Reason.String()
	if cause := ps.kick.Load(); cause != nil && r.Reason == pipe.ReasonStopped {
		reason = "kicked: " + (*cause).Error()
	}
	if r.FirstEnd != pipe.SideNone {
		side := "client"
		if r.FirstEnd == pipe.SideB {
			side = "backend"
		}
		reason += " (" + side + " first)"
	}
	d := r.Duration() // since the pipe started, which an adoption keeps
	if !ps.entry.start.IsZero() {
		d = r.End.Sub(ps.entry.start) // since the client connected, as an unpiped session's
	}
	ps.entry.write(r, d, reason)
}

// releaseAll gives back what the session held here: the pool lease, the
// connection slot, its count in the metrics.
func (ps *pipedSession) releaseAll() {
	if ps.lease != nil {
		ps.lease.End()
	}
	ps.release()
	ps.srv.Metrics.sessionEnded()
}
