package forward_test

import (
	"context"

	"github.com/pipegate/pipegate/forward"
	"github.com/pipegate/pipegate/pipe"
)

// The two sides of a binary upgrade: the old process sends each pair
// that can leave with its state, the new one adopts it.
func ExampleDaemon_HandOver() {
	var old, next *forward.Daemon // the old process's and the new one's
	send := func(p *pipe.Detached, st forward.PairState) error {
		// In a real upgrade: p.A and p.B over a Unix socket (SCM_RIGHTS),
		// p.State and st as bytes (upgrade.Conn.Send); here, in-process.
		return next.Adopt(p, st)
	}
	ctx := context.Background()
	if err := old.StopAccepting(ctx); err != nil {
		return // connections still being set up: they drain in the old process
	}
	sent, stayed, err := old.HandOver(ctx, send)
	_, _, _ = sent, stayed, err // the pairs that stayed drain in the old process
}
