// Package drain holds what pipegate's daemons share about the end of a
// drain: the pipes still open shortly before the deadline are stopped one
// after the other over a window (Spread), so that their clients do not all
// reconnect at the same instant.
//
//	done := make(chan struct{}) // closed once every pipe has ended
//	go waitAll(done)
//	sp := drain.Spread{Window: 10 * time.Second, Open: openHandles, Farewell: bye}
//	sp.Run(ctx, done) // ctx: the drain's deadline
//	select {
//	case <-done: // drained, or stopped by the spread
//	case <-ctx.Done(): // whatever is left is closed at once
//	}
package drain

import (
	"context"
	"time"

	"github.com/pipegate/pipegate/pipe"
)

// Spread stops the pipes left near a drain's deadline one after the other.
// Its zero value stops nothing.
type Spread struct {
	// Window: the pipes still open this long before the deadline are
	// stopped over it (less when less is left); 0 leaves them to the
	// deadline.
	Window time.Duration
	// Open returns the pipes still open, in the order they are stopped.
	Open func() []*pipe.Handle
	// Farewell is given to each Handle.Stop (nil: none).
	Farewell []byte
	// Started, if not nil, is told how many pipes are stopped over how
	// long, before the first is (to log it).
	Started func(n int, window time.Duration)
}

// Run waits until Window before ctx's deadline, then stops the pipes that
// Open returns one after the other, evenly over the window: the first at
// once, each next one window/(n+1) later. It returns early, when done is
// closed (every pipe ended) or ctx ends, and at once when ctx has no
// deadline or Window is 0. It returns how many pipes it stopped.
func (sp Spread) Run(ctx context.Context, done <-chan struct{}) int {
	deadline, ok := ctx.Deadline()
	if !ok || sp.Window <= 0 || sp.Open == nil {
		return 0
	}
	window := min(sp.Window, time.Until(deadline))
	if window <= 0 {
		return 0
	}
	t := time.NewTimer(time.Until(deadline.Add(-window)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
		return 0
	case <-ctx.Done():
		return 0
	}
	hs := sp.Open()
	if len(hs) == 0 {
		return 0
	}
	if sp.Started != nil {
		sp.Started(len(hs), window)
	}
	step := window / time.Duration(len(hs)+1)
	for i, h := range hs {
		h.Stop(sp.Farewell)
		if i == len(hs)-1 {
			break
		}
		t.Reset(step)
		select {
		case <-t.C:
		case <-done:
			return i + 1
		case <-ctx.Done():
			return i + 1
		}
	}
	return len(hs)
}
