package evloop

import (
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// end is one socket of a pair, as the loop sees it.
type end struct { // fields ordered so that a pair fits a 416-byte size class
	fd       int
	side     core.Side
	p        *pair
	tls      *tlsrec.State // the TLS record layer over the socket, or nil
	seq      uint32        // registration number, echoed by epoll in EpollEvent.Pad
	readable bool          // set by EPOLLIN/RDHUP/HUP/ERR, cleared by EAGAIN on read
	writable bool          // set by EPOLLOUT/HUP/ERR, cleared by EAGAIN on write
	// connecting: a B side a loop is connecting (Listener); neither
	// direction moves bytes until the connect succeeds.
	connecting bool
	// hup: an event carried RDHUP, HUP or ERR, so a short read no longer
	// proves the socket drained (relay): read on until EAGAIN or EOF.
	hup bool
	// oobInline: SO_OOBINLINE is set on the socket (or cannot be), so a
	// read crossing the urgent mark delivers the urgent byte in place.
	// urgent: an event carried EPOLLPRI since the last read that found
	// the socket drained: a short read may have stopped at the urgent
	// mark, and a splice that moves nothing may be stuck there. See
	// urgent_linux.go.
	oobInline, urgent bool
}

// dir is one direction of a pair: bytes read from src and written to dst.
// While it moves bytes it holds a kernel pipe or a buffer (the carrier); an
// idle direction holds neither.
type dir struct {
	p        *pair
	src, dst *end
	kp       *kpipe // kernel pipe carrier, or nil
	buf      []byte // buffer carrier, when not nil
	off      int    // start of pending bytes in buf
	pending  int    // bytes read from src and not yet written to dst
	bulk     bool   // a read filled the scratch buffer: splice until a small read
	eof      bool   // src returned EOF
	done     bool   // EOF seen, pending written and dst shut for writing
	queued   bool   // on the loop's run queue
	bytes    int64  // written to dst

	t *dirTLS // with TLS on either end (pumpTLS), else nil
}

// dirTLS is what a direction with TLS on either end keeps besides dir's
// fields; plain pairs do not allocate it. Records read from a TLS src
// wait in rbuf[roff:rlen] until whole; plain counts the plaintext behind
// the pending bytes sealed for a TLS dst, counted once they are all
// written.
type dirTLS struct {
	rbuf        []byte
	rlen        int // end of the bytes read into rbuf
	roff        int // start of those not yet opened (a partial record; plain dst only)
	plain       int
	closeNotify bool // close_notify sealed for dst
	unopened    bool // rbuf holds records from tlsrec.State.Unread, not yet opened
}

// pair is a connection pair owned by one loop; only that loop's goroutine
// touches it after submission.
type pair struct {
	a, b   end
	ab, ba dir
	opts   core.Options
	done   func(core.Result)
	start  time.Time
	dial   *dialState // pairs made by a Listener, else nil

	startNS    int64 // loop clock at registration
	lastActive int64 // loop clock of the last byte moved
	lingerFrom int64 // loop clock of the first half-close, 0 if none
	due        int64 // heap key: earliest possible deadline
	hidx       int   // index in the loop's timer heap, -1 if not in it

	firstEnd core.Side
	stop     *stopState // set once the owner stopped the pair (Pair.Stop), else nil
	closed   bool
	inline   bool // call done on the loop goroutine (Setup.InlineAfterClose)
}

// stopState is what a pair that its owner stopped keeps until it closes.
// It is made when the stop arrives, so that a running pair pays only for
// the pointer.
type stopState struct {
	farewell []byte // written to A after what was read from B
	due      int64  // loop clock at which the pair closes, farewell written or not
	queued   bool   // the farewell (and a close_notify for TLS) is B→A's pending output
	baDone   bool   // B→A is over (farewell written, or B had ended): the pair ends once A→B's pending bytes are written
}

func (p *pair) dirFrom(e *end) *dir {
	if e == &p.a {
		return &p.ab
	}
	return &p.ba
}

func (p *pair) dirTo(e *end) *dir {
	if e == &p.a {
		return &p.ba
	}
	return &p.ab
}

func (p *pair) other(e *end) *end {
	if e == &p.a {
		return &p.b
	}
	return &p.a
}

// nextDeadline returns the earliest loop-clock time at which a timer could
// end p, and which reason it would be; 0 if none applies.
func (p *pair) nextDeadline() (int64, core.Reason) {
	if p.stop != nil {
		return p.stop.due, core.ReasonStopped // the flush's bound replaces every limit
	}
	var at int64
	var why core.Reason
	consider := func(t int64, r core.Reason) {
		if at == 0 || t < at {
			at, why = t, r
		}
	}
	if p.opts.MaxLifetime > 0 {
		consider(p.startNS+int64(p.opts.MaxLifetime), core.ReasonLifetime)
	}
	if p.lingerFrom != 0 && p.opts.HalfCloseLinger > 0 { // before idle: wins ties, as in pipe
		quiet := max(p.lingerFrom, p.lastActive)
		consider(quiet+int64(p.opts.HalfCloseLinger), core.ReasonLinger)
	}
	if p.opts.IdleTimeout > 0 && !p.b.connecting { // as in pipe, idle counts from the connect
		consider(p.lastActive+int64(p.opts.IdleTimeout), core.ReasonIdleTimeout)
	}
	if p.dial != nil && p.dial.due != 0 {
		consider(p.dial.due, reasonDial)
	}
	return at, why
}
