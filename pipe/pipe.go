package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// flushTimeout bounds how long bytes already read from a failing side may
// take to reach the surviving side before both are closed, and how long a
// Handle.Stop's flush and farewell may take.
const flushTimeout = core.FlushTimeout

// pipe is the state shared by the two directions of one joined pair.
type pipe struct {
	a, b   endpoint
	ab, ba direction
	opts   Options
	eng    *Engine

	last     atomic.Int64 // time of the last transfer or half-close, ns since res.Start
	stopping atomic.Bool  // conns are being interrupted: later errors are ours
	running  atomic.Int32 // directions still running; the last one finishes

	res       Result // p.h.mu guards what follows, up to h
	reasonSet bool   // res.Reason is final (a limit or an error ended the pipe)
	halfOpen  bool   // one direction ended with EOF, the other still runs
	lingering bool   // the idle limit is the half-close linger (ReasonLinger)
	idle      *time.Timer
	idleAfter time.Duration // current idle limit (IdleTimeout, or linger once half-closed)
	lifetime  *time.Timer
	stopCtx   func() bool
	farewell  []byte    // Handle.Stop's, written to A once B→A has ended
	detach    *goDetach // a Detach under way (detach_go.go)

	detachTried atomic.Bool // a Detach has interrupted reads at least once

	// h is the pipe's Handle (h.p is p). Its mutex is the pipe's lock;
	// h.stopped says that Handle.Stop came first (every later end is the
	// stop's), h.done is closed once afterClose has returned (Join waits
	// on it).
	h Handle

	afterClose func(Result)
}

// Join moves bytes both ways between a and b until both directions are done,
// a limit in opts is reached or ctx is cancelled (ReasonShutdown); it closes
// both conns and returns the result. opts may be nil.
func Join(ctx context.Context, a, b net.Conn, opts *Options) Result {
	if isNil(a) || isNil(b) {
		return refuseNil(a, b, nil)
	}
	p := newPipe(a, b, opts, nil)
	p.h.done = make(chan struct{})
	p.stopCtx = context.AfterFunc(ctx, p.onShutdown)
	p.begin()
	go runDirection(&p.ba)
	runDirection(&p.ab)
	<-p.h.done
	return p.res
}

// Go joins a and b like Join, in the background, and calls afterClose (if
// not nil) exactly once, after both conns are closed. opts may be nil.
// Start does the same and returns a Handle.
func Go(a, b net.Conn, opts *Options, afterClose func(Result)) {
	Start(a, b, opts, afterClose)
}

func newPipe(a, b net.Conn, opts *Options, eng *Engine) *pipe {
	p := &pipe{eng: eng}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.HalfCloseLinger == 0 {
		p.opts.HalfCloseLinger = DefaultHalfCloseLinger
	}
	p.h.p = p
	p.res.Start = time.Now()
	p.a.init(a)
	p.b.init(b)
	p.ab = direction{p: p, src: &p.a, dst: &p.b}
	p.ba = direction{p: p, src: &p.b, dst: &p.a}
	p.running.Store(2)
	return p
}

// launch starts both directions in goroutines of their own.
func (p *pipe) launch() {
	p.begin()
	go runDirection(&p.ab)
	go runDirection(&p.ba)
}

// begin clears deadlines left over from the caller's dialogue and arms the
// limits.
func (p *pipe) begin() {
	_ = p.a.conn.SetDeadline(time.Time{})
	_ = p.b.conn.SetDeadline(time.Time{})
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if p.opts.MaxLifetime > 0 {
		p.lifetime = time.AfterFunc(p.opts.MaxLifetime, p.onLifetime)
	}
	if p.opts.IdleTimeout > 0 {
		p.setIdleLocked(p.opts.IdleTimeout, ReasonIdleTimeout)
	}
}

// directionEnded is called once by each direction when it stops.
func (p *pipe) directionEnded(d *direction, out outcome) {
	p.h.mu.Lock()
	d.ended = true
	owner := p.h.stopped
	if p.detach != nil {
		p.detachInterruptedLocked(fmt.Errorf("pipe: detach: the pipe ended meanwhile: %w", ErrNotDetachable))
	}
	p.h.mu.Unlock()
	if owner {
		// Handle.Stop: how a direction ends no longer matters (an EOF
		// must not shut A before the farewell); B→A's end is the moment
		// everything read from B has been written to A.
		if d == &p.ba {
			p.sayFarewell()
		}
		out.kind = outStopped
	}
	switch out.kind {
	case outEOF:
		p.record(p.side(d.src), ReasonEOF, nil)
		if err := d.dst.closeWrite(); errors.Is(err, errNoCloseWrite) {
			// The other side cannot learn that this one is done: end the
			// pipe, letting bytes in flight the other way arrive first.
			p.stopGracefully(d.src)
		} else {
			p.halfClose()
		}
	case outReadErr:
		// Everything read from src was written to dst before this read.
		p.record(p.side(d.src), classify(out.err), fmt.Errorf("pipe: read from side %s (%s): %w", p.side(d.src), d.src.addr(), out.err))
		p.stop()
	case outWriteErr:
		p.record(p.side(d.dst), classify(out.err), fmt.Errorf("pipe: write to side %s (%s): %w", p.side(d.dst), d.dst.addr(), out.err))
		p.stopGracefully(d.src)
	case outPanic:
		p.record(p.side(d.src), ReasonError, out.err)
		p.stop()
	}
	if p.running.Add(-1) == 0 {
		p.finish()
	}
}

// side names an endpoint.
func (p *pipe) side(e *endpoint) Side {
	if e == &p.a {
		return SideA
	}
	return SideB
}

// record notes the end of one side: the first side to end is FirstEnd, the
// first error or limit fixes Reason.
func (p *pipe) record(side Side, why Reason, err error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if p.stopping.Load() && why != ReasonEOF {
		return // a consequence of our own interruption
	}
	if p.res.FirstEnd == SideNone {
		p.res.FirstEnd = side
	}
	if why != ReasonEOF && !p.reasonSet {
		p.res.Reason, p.res.Err, p.reasonSet = why, err, true
	}
}

// halfClose starts the linger once the first direction has ended with EOF.
func (p *pipe) halfClose() {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if p.halfOpen || p.running.Load() < 2 {
		return // the other direction has ended too
	}
	p.halfOpen = true
	p.touch()
	limit, why := p.opts.IdleTimeout, ReasonIdleTimeout
	if l := p.opts.HalfCloseLinger; l > 0 && (limit == 0 || l <= limit) {
		limit, why = l, ReasonLinger
	}
	if limit > 0 {
		p.setIdleLocked(limit, why)
	}
}

// stopWith ends the pipe at once for a limit or shutdown. A shutdown cuts
// short the flush of a Handle.Stop (whose reason stays).
func (p *pipe) stopWith(why Reason) {
	p.h.mu.Lock()
	if p.detach != nil {
		p.detachInterruptedLocked(fmt.Errorf("pipe: detach: the pipe is ending (%s): %w", why, ErrNotDetachable))
	}
	if p.stopping.Load() {
		force := p.h.stopped && why == ReasonShutdown
		p.h.mu.Unlock()
		if force {
			p.stop()
		}
		return
	}
	if !p.reasonSet {
		p.res.Reason, p.reasonSet = why, true
	}
	p.h.mu.Unlock()
	p.stop()
}

// stop closes both transports at once; blocked reads and writes return.
func (p *pipe) stop() {
	p.stopping.Store(true)
	p.a.forceClose()
	p.b.forceClose()
}

// stopGracefully ends the pipe while letting bytes already read reach the
// surviving side: reads stop on both sides, writes to survivor get
// flushTimeout.
func (p *pipe) stopGracefully(survivor *endpoint) {
	p.stopping.Store(true)
	_ = survivor.conn.SetWriteDeadline(time.Now().Add(flushTimeout))
	p.a.interruptReads()
	p.b.interruptReads()
}

// stopByOwner is Handle.Stop for a goroutine pipe: unless the pipe is
// ending already, reads from B stop; B→A's direction writes what it read
// and then ends (directionEnded), and sayFarewell writes the farewell and
// stops reads from A. Writes to both sides get flushTimeout.
func (p *pipe) stopByOwner(farewell []byte) {
	p.h.mu.Lock()
	if p.h.detached {
		// It left (Engine.DetachAll): the Stop goes where it went on
		// here after a failed hand-over, or waits to see if it does.
		next := p.h.next
		if next == nil && !p.h.stopped {
			p.h.stopped, p.h.farewell = true, bytes.Clone(farewell)
		}
		p.h.mu.Unlock()
		if next != nil {
			next.Stop(farewell)
		}
		return
	}
	if p.stopping.Load() || p.reasonSet {
		p.h.mu.Unlock()
		return // ending already: the first end decides
	}
	if p.detach != nil {
		p.detachInterruptedLocked(fmt.Errorf("pipe: detach: the pipe is being stopped: %w", ErrNotDetachable))
	}
	p.res.Reason, p.reasonSet = ReasonStopped, true
	p.h.stopped = true
	p.farewell = bytes.Clone(farewell)
	p.stopping.Store(true)
	baEnded := p.ba.ended
	p.h.mu.Unlock()
	deadline := time.Now().Add(flushTimeout)
	_ = p.a.conn.SetWriteDeadline(deadline)
	_ = p.b.conn.SetWriteDeadline(deadline)
	p.b.interruptReads()
	if baEnded {
		// B ended its stream before the stop and A was told (EOF): no
		// farewell may follow.
		p.a.interruptReads()
	}
}

// sayFarewell runs once B→A has ended after a Handle.Stop: it writes the
// farewell to A (counted as B→A bytes), then ends A's reads.
func (p *pipe) sayFarewell() {
	if len(p.farewell) > 0 {
		p.ba.write(p.farewell)
	}
	p.a.interruptReads()
}

func (p *pipe) onLifetime() { p.stopWith(ReasonLifetime) }
func (p *pipe) onShutdown() { p.stopWith(ReasonShutdown) }

// stopTimersLocked stops the idle and lifetime timers (p.h.mu held);
// timers that already fired find nothing to do.
func (p *pipe) stopTimersLocked() {
	if p.idle != nil {
		p.idle.Stop()
	}
	if p.lifetime != nil {
		p.lifetime.Stop()
	}
	p.stopping.Store(true)
}

// finish runs once, after both directions have stopped: it closes both conns
// and hands over the result.
func (p *pipe) finish() {
	p.h.mu.Lock()
	p.stopTimersLocked()
	p.h.mu.Unlock()
	if p.stopCtx != nil {
		p.stopCtx()
	}
	_ = p.a.conn.Close()
	_ = p.b.conn.Close()
	p.res.BytesAToB = p.ab.n.Load()
	p.res.BytesBToA = p.ba.n.Load()
	p.res.End = time.Now()
	defer p.h.finished() // after leave: Done's channel (and Join) last
	if p.eng != nil {
		defer p.eng.leave(p)
	}
	if p.afterClose != nil {
		p.afterClose(p.res)
	}
}

// classify maps an I/O error to the Reason reported for it.
func classify(err error) Reason {
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED):
		return ReasonReset
	}
	return ReasonError
}

// isTimeout reports a deadline error (ours: interruption or TLS draining).
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// isEOF reports a clean end of stream.
func isEOF(err error) bool { return err == io.EOF || errors.Is(err, io.EOF) }

// isNil reports whether c is nil or a PrefixConn around none (ErrNilConn).
func isNil(c net.Conn) bool {
	if pc, ok := c.(*PrefixConn); ok {
		return pc == nil || pc.Conn == nil
	}
	return c == nil
}

// refuseNil ends a pipe one of whose conns is nil before it begins: it
// closes the other and calls afterClose (if not nil) with ErrNilConn.
func refuseNil(a, b net.Conn, afterClose func(Result)) Result {
	res := Result{Start: time.Now(), Reason: ReasonError, Err: ErrNilConn}
	for _, c := range []net.Conn{a, b} {
		if !isNil(c) {
			_ = c.Close()
		}
	}
	res.End = time.Now()
	if afterClose != nil {
		afterClose(res)
	}
	return res
}
