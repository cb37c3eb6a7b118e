package pipe

import "time"

// A direction that has done TLS work and then stays idle goes on waiting on
// a fresh goroutine, so that an idle direction holds the 2 KiB stack a
// goroutine starts with.
//
// crypto/tls needs more stack than that (record decryption, encryption, the
// handshake), and the runtime never shrinks a waiting goroutine's stack back
// below 4 KiB once it grew: it shrinks only while less than a quarter is in
// use, counting an 800-byte guard, and the wait alone (our frames and the
// netpoller's) takes about 600 bytes. So a direction whose goroutine did
// TLS work waits at most moveAfter on it; when nothing came by then, a new
// goroutine takes over the wait and the grown one returns. An idle TLS pair
// then holds two 2 KiB stacks instead of two 4 KiB ones, and a busy one
// keeps its goroutines (starting one per burst cost a third more latency
// per round trip). Only directions with a socket to wait on do this: one
// that blocks in a read (TLS over a conn of unknown type) waits where it
// is.

// moveAfter is how long a grown goroutine waits before handing over
// (Engine.moveAfter shortens it in tests).
const moveAfter = time.Second

// moveDelay is the pipe's moveAfter.
func (p *pipe) moveDelay() time.Duration {
	if p.eng != nil && p.eng.moveAfter > 0 {
		return p.eng.moveAfter
	}
	return moveAfter
}

// movesOn reports whether d can hand its waits to fresh goroutines: it
// waits on a socket and one of its ends is TLS.
func (d *direction) movesOn() bool {
	return d.src.raw != nil && (d.src.tls != nil || d.dst.tls != nil)
}

// armMove sets the read deadline at which a grown goroutine hands its wait
// over; it reports whether it did (not while stopping, not on conns
// without deadlines).
func (d *direction) armMove() bool {
	return d.grown && d.src.setReadDeadline(time.Now().Add(d.p.moveDelay())) == nil
}

// disarmMove clears the deadline set by armMove after the wait returned
// err. With stop it tells the caller to return out: the pipe is stopping
// (the interruption's deadline stays), or the wait timed out and the
// direction moves on to a fresh goroutine (outMoved: runDirection starts
// it once the old one's deferred releases have run).
func (d *direction) disarmMove(err error) (out outcome, stop bool) {
	if d.src.setReadDeadline(noDeadline) == errStopping {
		return outcome{kind: outStopped}, true
	}
	if err != nil && isTimeout(err) {
		d.moves.Add(1)
		return outcome{kind: outMoved}, true
	}
	return outcome{}, false
}
