package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/pipegate/pipegate/route"
)

// Pools gives the member of a pool (a route's pool:NAME backend) that a
// user's sessions go to, so that every session of one user, on every
// instance and in every protocol, reaches one backend of a shared
// storage; package affinity does it (maild wires it). A Server without
// Pools refuses pool backends as unavailable.
type Pools interface {
	// Assign returns the backend of protocol on the member user is
	// assigned to in pool, and the lease that holds the assignment for
	// one session. An error means no member may be used now (the shared
	// store unreachable, a move running, every member down): the client
	// is told the server is unavailable; the gateway never guesses.
	Assign(ctx context.Context, pool, user, protocol string) (route.Backend, Lease, error)
}

// Lease is one session's hold on a user's assignment (affinity.Lease).
type Lease interface {
	// Start counts the session once the backend accepted the login; an
	// error (the assignment changed meanwhile) closes the session.
	Start(ctx context.Context) error
	// End releases the lease once the session is gone, started or not;
	// the gateway calls it exactly once.
	End()
	// OnKick calls f once (on a goroutine of the lease's) when the
	// user's sessions must end here, at once if that already happened,
	// with why: an error wrapping ErrMoved when the user moves to another
	// member, any other when the assignment can no longer be vouched for
	// (the shared store unreachable for too long). f must not block.
	OnKick(f func(cause error))
}

// ErrMoved is the cause of a lease's kick when its user moves to another
// member of the pool (Lease.OnKick).
var ErrMoved = errors.New("account moved")

// errNoPools: a route names a pool and the Server has none.
var errNoPools = errors.New("the route names a pool and no pools are configured")

// poolBackend resolves a route's pool:NAME backend for the account the
// backend logs in as.
func (ss *Session) poolBackend(rb route.Backend, user string) (route.Backend, Lease, error) {
	if ss.srv.Pools == nil {
		return route.Backend{}, nil, errNoPools
	}
	b, l, err := ss.srv.Pools.Assign(ss.ctx, rb.Pool, user, ss.srv.name())
	if err != nil {
		return route.Backend{}, nil, fmt.Errorf("pool %s: %w", rb.Pool, err)
	}
	return b, l, nil
}
