package pipe

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// Flavour chooses how an Engine runs the pipes entered into it.
type Flavour int

const (
	// FlavourAuto runs pairs of plain TCP or Unix stream sockets (a
	// *PrefixConn over one included) on epoll event loops on Linux: an idle
	// pair holds no goroutine, buffer or kernel pipe, under 1 KiB in all.
	// A TLS 1.3 *tls.Conn whose handshake is done goes to the loops too,
	// which carry on its record layer (see Engine.TLSOnGoroutines). Other
	// pairs (TLS 1.2, other net.Conns) and other systems get goroutines.
	FlavourAuto Flavour = iota
	// FlavourGoroutines runs every pipe as two goroutines, as Go does.
	FlavourGoroutines
)

func (f Flavour) String() string {
	switch f {
	case FlavourAuto:
		return "auto"
	case FlavourGoroutines:
		return "goroutines"
	}
	return "unknown"
}

// Engine owns many pipes: it counts them and the bytes they move, refuses
// new pipes once Shutdown has begun, and Shutdown drains them like
// http.Server.Shutdown. The zero value is ready to use (FlavourAuto);
// Options, Flavour and Loops apply to pipes entered after they are set.
//
// With FlavourAuto, Enter takes the sockets of a qualifying pair out of
// their Go conns (which it closes) and gives them to event loops that the
// Engine makes with the first such pair. A loop runs a goroutine only while
// it has pairs; the loops' descriptors are closed once they have had no pair
// for a few seconds (or by Shutdown), so an Engine that is never shut down
// leaves no goroutine behind and a daemon seeing one short connection at a
// time does not make and close loops for each.
type Engine struct {
	Options Options
	Flavour Flavour
	Loops   int // event loops (FlavourAuto); 0: GOMAXPROCS
	// TLSOnGoroutines keeps pairs with a *tls.Conn on goroutines running
	// crypto/tls. By default (FlavourAuto) a TLS 1.3 conn whose handshake is
	// done goes to the loops, which carry on its record layer themselves
	// (package pipe/internal/tlsrec) and hold no goroutine and no buffer
	// for it while it is idle.
	TLSOnGoroutines bool

	loopCfg    evloop.Config // tests: pool sizes
	moveAfter  time.Duration // tests: see burst.go
	loopLinger time.Duration // tests: see engine_loop.go; 0: defaultLoopLinger
	batchHook  func()        // tests: called as DetachAll takes a batch off the loops

	mu        sync.Mutex
	closing   bool
	pipes     map[*pipe]struct{}
	drained   chan struct{}          // closed once closing and no pipe is left
	group     *evloop.Group          // event loops, nil before the first pair and once retired
	onLoops   int                    // pairs on group whose afterClose has not returned
	listeners map[*Listener]struct{} // open Listeners (they keep group)
	loopPipes map[*loopDone]struct{} // pairs on group (DetachAll)
	linger    *time.Timer            // retires group once it has been empty for loopLinger
	retiring  sync.WaitGroup

	open, total          atomic.Int64
	bytesAToB, bytesBToA atomic.Int64              // goroutine pipes, and retired loop groups
	fallbacks            [core.NumFallbacks]uint64 // by Fallback; e.mu
}

// Stats is a snapshot of an Engine's counters.
type Stats struct {
	Open      int64 // pipes running now
	OnLoops   int64 // of which on the event loops (FlavourAuto)
	Total     int64 // pipes entered since the engine was created
	BytesAToB int64 // bytes written to B sides, all pipes (running ones included)
	BytesBToA int64
	// Fallbacks counts, by reason, the pipes entered with FlavourAuto that
	// run on goroutines rather than on the event loops, since the engine
	// was created; each pipe counts once, under the first reason found
	// (side A's before side B's). Reasons that never happened are absent
	// (nil when none did): read it with AllFallbacks for every reason.
	Fallbacks map[Fallback]uint64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	var ab, ba int64
	if e.group != nil {
		ab, ba = e.group.Bytes()
	}
	s := Stats{
		Open:      e.open.Load(),
		OnLoops:   int64(e.onLoops),
		Total:     e.total.Load(),
		BytesAToB: e.bytesAToB.Load() + ab,
		BytesBToA: e.bytesBToA.Load() + ba,
	}
	for f, n := range e.fallbacks {
		if n > 0 {
			if s.Fallbacks == nil {
				s.Fallbacks = make(map[Fallback]uint64)
			}
			s.Fallbacks[Fallback(f)] = n
		}
	}
	e.mu.Unlock()
	return s
}

// Enter joins a and b in the background with e.Options and calls
// afterClose (if not nil) exactly once, after both conns are closed. It may
// be called from any goroutine and does not block. Once Shutdown has begun
// it returns ErrShuttingDown and a and b stay the caller's to close; the
// same with ErrNilConn.
//
// When the pair goes to an event loop (FlavourAuto), a and b are closed
// before Enter returns and their sockets live on in the loop: the caller
// must not use them any more, as with any conn handed to Enter.
//
// Start does the same and returns the pipe's Handle.
func (e *Engine) Enter(a, b net.Conn, afterClose func(Result)) error {
	_, err := e.Start(a, b, afterClose)
	return err
}

// Start is Enter returning the pipe's Handle, with which the owner can
// stop the pipe (Handle.Stop) on every path a pipe takes: goroutines or
// event loops, TLS or not. On error the Handle is nil.
func (e *Engine) Start(a, b net.Conn, afterClose func(Result)) (*Handle, error) {
	if isNil(a) || isNil(b) {
		return nil, ErrNilConn
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, ErrShuttingDown
	}
	e.total.Add(1)
	e.open.Add(1)
	if e.Flavour == FlavourAuto {
		if h := e.enterLoopLocked(a, b, afterClose); h != nil {
			e.mu.Unlock()
			return h, nil
		}
	}
	p := newPipe(a, b, &e.Options, e)
	p.afterClose = afterClose
	if e.pipes == nil {
		e.pipes = make(map[*pipe]struct{})
	}
	e.pipes[p] = struct{}{}
	e.mu.Unlock()
	p.launch()
	return &p.h, nil
}

// Handles returns the Handles of the pipes running now, on goroutines and
// on the event loops (those a Listener accepted included), for an owner
// that stops them itself: a drain that spreads its closes. A pipe may end
// or leave after Handles returns; Stop on its Handle then does nothing.
func (e *Engine) Handles() []*Handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	hs := make([]*Handle, 0, len(e.pipes)+len(e.loopPipes))
	for p := range e.pipes {
		hs = append(hs, &p.h)
	}
	for d := range e.loopPipes {
		hs = append(hs, &d.h)
	}
	return hs
}

// leave is called by a pipe once its afterClose has returned.
func (e *Engine) leave(p *pipe) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.pipes, p)
	e.open.Add(-1)
	e.checkDrainedLocked()
}

// checkDrainedLocked closes e.drained once shutting down with no pipe left.
func (e *Engine) checkDrainedLocked() {
	if e.closing && len(e.pipes) == 0 && e.onLoops == 0 && e.drained != nil {
		select {
		case <-e.drained:
		default:
			close(e.drained)
		}
	}
}

// ShuttingDown reports whether Shutdown has begun.
func (e *Engine) ShuttingDown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// Shutdown refuses new pipes and waits for the running ones to end. When ctx
// ends first it stops the rest (their Result says ReasonShutdown), waits for
// their afterClose callbacks and returns ctx.Err(). Pipes of both flavours
// drain at the same time. It may be called more than once.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.closing {
		e.closing = true
		e.drained = make(chan struct{})
		e.checkDrainedLocked()
	}
	drained := e.drained
	e.mu.Unlock()
	e.closeListeners()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		e.mu.Lock()
		running := make([]*pipe, 0, len(e.pipes))
		for p := range e.pipes {
			running = append(running, p)
		}
		g := e.group
		e.mu.Unlock()
		for _, p := range running {
			p.onShutdown()
		}
		if g != nil {
			// ctx is done: the loops close their pairs at once.
			_ = g.Shutdown(ctx)
		}
		<-drained
	}
	// No pair is left: retire the loops now, not at the end of their
	// linger, and wait until their descriptors are closed.
	e.mu.Lock()
	e.retireIfIdleLocked()
	e.mu.Unlock()
	e.retiring.Wait()
	return err
}
