package pipe

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// The event-loop side of Engine (FlavourAuto): plain socket pairs are
// handed to an evloop.Group, made with the first such pair. Its loops run a
// goroutine only while they have pairs, so an Engine that is never shut
// down leaves no goroutine behind. The Group itself (GOMAXPROCS epoll
// instances and eventfds, pooled kernel pipes) is kept for loopLinger
// after its last pair has ended, then retired (descriptors closed), or at
// once by Shutdown: a daemon seeing one short connection at a time does not
// make and close the loops for every connection.

// defaultLoopLinger is how long an Engine keeps its event loops without
// pairs before closing their descriptors.
const defaultLoopLinger = 5 * time.Second

// enterLoopLocked hands a and b to the event loops when both are plain
// stream sockets or TLS 1.3 conns over one (under any *PrefixConn) and
// returns the pipe's Handle; it returns nil, with a and b untouched and the
// reason counted in e.fallbacks, when they do not qualify or the loops
// cannot take them. e.mu is held and the pipe is already counted in open
// and total.
func (e *Engine) enterLoopLocked(a, b net.Conn, afterClose func(Result)) *Handle {
	if !evloop.Supported {
		e.fallbacks[FallbackSystem]++
		return nil
	}
	ra, fromA := unwrapPrefix(a)
	rb, fromB := unwrapPrefix(b)
	ca, why := e.loopConn(ra)
	if why == noFallback {
		cb, whyB := e.loopConn(rb)
		why = whyB
		if why == noFallback {
			return e.takeLocked(ca, cb, fromA, fromB, afterClose)
		}
	}
	e.fallbacks[why]++
	return nil
}

// takeLocked is enterLoopLocked for sides that qualify.
func (e *Engine) takeLocked(ca, cb evloop.Conn, fromA, fromB []byte, afterClose func(Result)) *Handle {
	if e.group == nil {
		cfg := e.loopCfg
		cfg.Loops = e.Loops
		g, err := evloop.New(cfg)
		if err != nil {
			e.fallbacks[evloop.FallbackOf(err)]++
			return nil // e.g. out of descriptors: goroutines still work
		}
		e.group = g
	}
	ea, eb, err := evloop.TakeConns(ca, cb)
	if err != nil {
		e.fallbacks[evloop.FallbackOf(err)]++
		e.loopsIdleLocked()
		return nil // a and b untouched
	}
	d := newLoopDone(e, afterClose)
	e.onLoopLocked(d)
	pair, err := e.group.AddWithPrefix(ea, eb, fromA, fromB, e.Options, d.run)
	if err != nil {
		// Not reached: a group is retired only with e.mu held and no pair
		// on it. The Go conns are closed; the sockets go with ea and eb.
		_ = ea.Close()
		_ = eb.Close()
		now := time.Now()
		go d.run(Result{Start: now, End: now, Reason: ReasonError, Err: err})
		return &d.h
	}
	d.h.setPair(pair)
	return &d.h
}

// newLoopDone makes the done callback and Handle of a pair on the loops.
func newLoopDone(e *Engine, afterClose func(Result)) *loopDone {
	d := &loopDone{e: e, afterClose: afterClose}
	d.h.ld = d
	return d
}

// onLoopLocked counts in a pair of the loops (e.mu held); DetachAll finds
// it in e.loopPipes.
func (e *Engine) onLoopLocked(d *loopDone) {
	e.onLoops++
	if e.loopPipes == nil {
		e.loopPipes = make(map[*loopDone]struct{})
	}
	e.loopPipes[d] = struct{}{}
}

// noFallback is loopConn's answer for a conn that may go to the loops.
const noFallback Fallback = -1

// loopConn describes c for the loops: a plain socket, or a *tls.Conn
// over one (under PrefixConns whose bytes the handshake used up), unless
// e.TLSOnGoroutines. When c cannot go to the loops it returns why;
// otherwise noFallback.
func (e *Engine) loopConn(c net.Conn) (evloop.Conn, Fallback) {
	t, ok := c.(*tls.Conn)
	if !ok {
		if !evloop.Qualifies(c) {
			return evloop.Conn{}, FallbackConnType
		}
		return evloop.Conn{Sock: c}, noFallback
	}
	if e.TLSOnGoroutines {
		return evloop.Conn{}, FallbackTLSOnGoroutines
	}
	sock := t.NetConn()
	for {
		pc, ok := sock.(*PrefixConn)
		if !ok {
			break
		}
		if len(pc.Prefix) > 0 {
			return evloop.Conn{}, FallbackTLSBuffered // bytes crypto/tls has not read yet
		}
		sock = pc.Conn
	}
	if !evloop.Qualifies(sock) {
		return evloop.Conn{}, FallbackConnType
	}
	return evloop.Conn{Sock: sock, TLS: t}, noFallback
}

// unwrapPrefix returns the conn under any *PrefixConn layers of c and the
// bytes they still carry, outermost first.
func unwrapPrefix(c net.Conn) (net.Conn, []byte) {
	var prefix []byte
	for {
		pc, ok := c.(*PrefixConn)
		if !ok {
			return c, prefix
		}
		prefix = append(prefix, pc.Prefix...)
		c = pc.Conn
	}
}

// loopDone is the done callback of one pair on the event loops, and the
// pair's Handle.
type loopDone struct {
	e          *Engine
	afterClose func(Result)
	h          Handle
}

func (d *loopDone) run(r Result) {
	// The Handle stops reaching the loops before the pair is counted out
	// (the loops may be retired after that).
	d.h.closingPair()
	defer d.h.finished() // after leaveLoop: Done's channel closes last
	defer d.e.leaveLoop(d)
	if d.afterClose != nil {
		d.afterClose(r)
	}
}

// leaveLoop counts out a pair of the loops once its afterClose returned,
// or once it was detached (d nil: a connection Accept refused).
func (e *Engine) leaveLoop(d *loopDone) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.loopPipes, d)
	e.onLoops--
	e.open.Add(-1)
	e.loopsIdleLocked()
	e.checkDrainedLocked()
}

// loopsIdleLocked starts the linger of the loops when no pair is left on
// them: retireIfIdleLocked runs once they have stayed empty for it (a pair
// entered meanwhile keeps them), or at once when shutting down.
func (e *Engine) loopsIdleLocked() {
	if e.group == nil || e.onLoops > 0 || len(e.listeners) > 0 {
		return
	}
	if e.closing {
		e.retireIfIdleLocked()
		return
	}
	d := e.loopLinger
	if d <= 0 {
		d = defaultLoopLinger
	}
	if e.linger == nil {
		e.linger = time.AfterFunc(d, e.lingerEnded)
	} else {
		e.linger.Reset(d)
	}
}

// lingerEnded runs on the linger timer's goroutine.
func (e *Engine) lingerEnded() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.retireIfIdleLocked()
}

// retireIfIdleLocked stops the loops when no pair is left on them; their
// byte counts move to the Engine's own counters.
func (e *Engine) retireIfIdleLocked() {
	if e.group == nil || e.onLoops > 0 || len(e.listeners) > 0 {
		return
	}
	if e.linger != nil {
		e.linger.Stop()
		e.linger = nil
	}
	g := e.group
	e.group = nil
	ab, ba := g.Bytes()
	e.bytesAToB.Add(ab)
	e.bytesBToA.Add(ba)
	e.retiring.Add(1)
	go retireGroup(g, &e.retiring)
}

// retireGroup stops an idle group: it waits for the done callback that
// emptied it to return, then closes the loops' descriptors.
func retireGroup(g *evloop.Group, wg *sync.WaitGroup) {
	defer wg.Done()
	_ = g.Shutdown(context.Background())
}
