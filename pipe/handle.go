package pipe

import (
	"bytes"
	"net"
	"sync"

	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// Handle is the owner's hold on one running pipe, from Start or
// Engine.Start: it can end the pipe with a farewell to side A (Stop) and
// tell when the pipe is over (Done).
//
// A Handle costs no allocation of its own: it lives in the pipe's state.
type Handle struct {
	p    *pipe       // a goroutine pipe; set before the Handle is shared
	pair evloop.Pair // a pair on the event loops; h.mu

	mu      sync.Mutex    // a goroutine pipe's lock as well (pipe.go)
	stopped bool          // Stop came first (goroutine pipe), or reached the loops
	closing bool          // the loop pair's afterClose has begun: no Stop may reach the loops
	ended   bool          // afterClose has returned
	done    chan struct{} // made by Done (or Join), closed once ended

	ld        *loopDone // a pair on the event loops: its done callback
	tag       string    // SetTag's, or the Listener's (Detached.Tag)
	value     any       // Setup.Value (Detached.Value); set before the Handle is shared
	detaching bool      // a Detach of the loop pair is under way
	detached  bool      // the pipe has left (Detach): nothing reaches the loops
	farewell  []byte    // a Stop's while detaching, again if the pipe stays
	next      *Handle   // a goroutine pipe's after a failed hand-over: it goes on as next (Engine.DetachAll)
}

// Stop ends the pipe at a clean point: it stops reading from B (and from
// A), writes to A what it had already read from B, then writes farewell to
// A (nil: nothing), then closes both sides, a TLS side with close_notify.
// The flush and the farewell together get 5 seconds (as the flush after
// an error); a side that does not take them by then is closed anyway. Bytes read from A and not yet written to B are written to
// B within the same bound, best effort.
//
// The Result then says ReasonStopped, with FirstEnd SideNone unless a side
// had ended its stream before Stop (that side stays FirstEnd); errors
// during the flush are not reported. The farewell counts in BytesBToA, as
// far as it was written. When B had already ended its stream, A has been
// told EOF and no farewell can follow it: Stop then just closes both sides.
//
// Stop does not wait (Done does) and does not keep farewell. It may be
// called more than once, from any goroutine, also while or after the pipe
// ends by itself: whichever comes first decides the Result, later Stops do
// nothing, and afterClose runs exactly once, after both sides are closed.
//
// A side whose conn does not support deadlines (neither the socket nor the
// wrapper) cannot be bounded: a peer that never reads may then hold the
// pipe until Engine.Shutdown's context ends.
func (h *Handle) Stop(farewell []byte) {
	if h.p != nil {
		h.p.stopByOwner(farewell)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped || h.closing || h.detached {
		return
	}
	h.stopped = true
	fw := bytes.Clone(farewell)
	if h.detaching {
		h.farewell = fw // the detach may win; if the pipe stays, it stops
	}
	h.pair.Stop(fw)
}

// SetTag names the pipe for when it leaves the process: Detach and
// Engine.DetachAll give the tag as Detached.Tag, so that the adopting
// process knows whose pipe it is. Pipes accepted by Engine.Listen carry
// the Listener's Acceptor.Tag.
func (h *Handle) SetTag(tag string) {
	h.mu.Lock()
	h.tag = tag
	next := h.next
	h.mu.Unlock()
	if next != nil {
		next.SetTag(tag)
	}
}

// Done returns a channel that is closed once the pipe is over: both sides
// closed and afterClose (if any) returned, or the pipe detached (Detach,
// Engine.DetachAll: afterClose is then not called here).
func (h *Handle) Done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		h.done = make(chan struct{})
		if h.ended {
			close(h.done)
		}
	}
	return h.done
}

// setPair records the loop pair the Handle stops (before any Stop can
// reach it: Stop takes h.mu too).
func (h *Handle) setPair(p evloop.Pair) {
	h.mu.Lock()
	h.pair = p
	h.mu.Unlock()
}

// closingPair is called as a loop pair's afterClose begins: from then on
// the pair's loop may go away, so Stop must no longer reach it.
func (h *Handle) closingPair() {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
}

// finished is called once afterClose has returned: Done's channel closes.
func (h *Handle) finished() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	if h.done != nil {
		close(h.done)
	}
}

// Start joins a and b like Go and returns the pipe's Handle. opts may be
// nil.
func Start(a, b net.Conn, opts *Options, afterClose func(Result)) *Handle {
	if isNil(a) || isNil(b) {
		refuseNil(a, b, afterClose)
		return &Handle{closing: true, ended: true} // over: Stop and Detach do nothing
	}
	p := newPipe(a, b, opts, nil)
	p.afterClose = afterClose
	p.launch()
	return &p.h
}
