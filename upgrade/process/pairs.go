package process

import (
	"context"

	"github.com/pipegate/pipegate/upgrade"
)

// Pairs is a daemon's side of the seam for moving established pairs in a
// binary upgrade. The upgrade hands the listening sockets over first;
// once the new process has reported that it serves
// (upgrade.Conn.WaitReady), the old process calls HandOver on the same
// channel, and the new one, right after its Ready (in Serving), calls
// Adopt. Pairs HandOver leaves behind (in their pre-login dialogue, on
// goroutines with crypto/tls, ...) drain in the old process as on
// SIGTERM.
type Pairs interface {
	// HandOver is the old process's side: it stops accepting (the new
	// process accepts on the same sockets by then) without aborting what
	// it accepted, lets the connections accepted be set up, sends the
	// pairs that can move over c (pipe.Engine.DetachAll, then
	// upgrade.Conn.Send with their sockets and state) and returns once
	// the new process has them, or an error (the pairs not sent stay here
	// and drain). It runs after WaitReady succeeded: an error no longer
	// rolls the upgrade back.
	HandOver(ctx context.Context, c *upgrade.Conn) error
	// Adopt is the new process's side: it receives what HandOver sends
	// and gives each pair to the daemon's engine (pipe.Engine.Adopt),
	// until the old side says it is done or closes c.
	Adopt(ctx context.Context, c *upgrade.Conn) error
}

// noPairs moves no pair: they all drain in the old process.
type noPairs struct{}

func (noPairs) HandOver(context.Context, *upgrade.Conn) error { return nil }
func (noPairs) Adopt(context.Context, *upgrade.Conn) error    { return nil }
