package pipe

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Engine owns many pipes: it counts them and the bytes they move, refuses
// new pipes once Shutdown has begun, and Shutdown drains them like
// http.Server.Shutdown. The zero value is ready to use; Options apply to
// pipes entered after they are set.
//
// In this version each pipe runs as two goroutines, as with Go; the
// methods are the seam where an event-loop engine can take over.
type Engine struct {
	Options Options

	mu      sync.Mutex
	closing bool
	pipes   map[*pipe]struct{}
	drained chan struct{} // closed once closing and no pipe is left

	open, total          atomic.Int64
	bytesAToB, bytesBToA atomic.Int64
}

// Stats is a snapshot of an Engine's counters.
type Stats struct {
	Open      int64 // pipes running now
	Total     int64 // pipes entered since the engine was created
	BytesAToB int64 // bytes written to B sides, all pipes (running ones included)
	BytesBToA int64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Open:      e.open.Load(),
		Total:     e.total.Load(),
		BytesAToB: e.bytesAToB.Load(),
		BytesBToA: e.bytesBToA.Load(),
	}
}

// Enter joins a and b in the background (as Go does, with e.Options) and
// calls afterClose (if not nil) exactly once, after both conns are closed.
// It may be called from any goroutine. Once Shutdown has begun it returns
// ErrShuttingDown and a and b stay the caller's to close.
func (e *Engine) Enter(a, b net.Conn, afterClose func(Result)) error {
	if a == nil || b == nil {
		return errors.New("pipe: Engine.Enter with a nil conn")
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return ErrShuttingDown
	}
	p := newPipe(a, b, &e.Options, e)
	p.afterClose = afterClose
	if e.pipes == nil {
		e.pipes = make(map[*pipe]struct{})
	}
	e.pipes[p] = struct{}{}
	e.open.Add(1)
	e.total.Add(1)
	e.mu.Unlock()
	p.launch()
	return nil
}

// leave is called by a pipe once its afterClose has returned.
func (e *Engine) leave(p *pipe) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.pipes, p)
	e.open.Add(-1)
	if e.closing && len(e.pipes) == 0 && e.drained != nil {
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
// their afterClose callbacks and returns ctx.Err(). It may be called more
// than once.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.closing {
		e.closing = true
		e.drained = make(chan struct{})
		if len(e.pipes) == 0 {
			close(e.drained)
		}
	}
	drained := e.drained
	e.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	running := make([]*pipe, 0, len(e.pipes))
	for p := range e.pipes {
		running = append(running, p)
	}
	e.mu.Unlock()
	for _, p := range running {
		p.onShutdown()
	}
	<-drained
	return ctx.Err()
}
