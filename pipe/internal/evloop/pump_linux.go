package evloop

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// pumpBudget is how many bytes one direction may move before the loop turns
// to other work; it keeps one bulk transfer from starving the rest.
const pumpBudget = 1 << 20

const bufSize = 64 << 10

// scratchSize is the loop's shared buffer for small reads; a read that fills
// it switches the direction to splicing.
const scratchSize = 16 << 10

const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

// pump moves bytes from d.src to d.dst until one of them would block, the
// budget is spent, the source ends or a call fails.
func (l *loop) pump(d *dir) {
	if d.p.b.connecting {
		return // connectEvent queues A's direction once connected
	}
	if d.src.tls != nil || d.dst.tls != nil {
		l.pumpTLS(d)
		return
	}
	p := d.p
	budget := pumpBudget
	for !p.closed && !d.done {
		if d.pending > 0 {
			if !l.writePending(d, &budget) {
				return
			}
			continue
		}
		if p.stop != nil {
			if !l.stopStep(d) {
				return
			}
			continue
		}
		if d.eof {
			l.halfClose(d)
			return
		}
		if !d.src.readable {
			l.release(d)
			return
		}
		if !d.bulk {
			l.release(d) // a pipe left from a bulk phase goes back to the pool
			if !l.relay(d) {
				return
			}
			continue
		}
		if d.buf != nil && !l.g.cfg.NoSplice {
			l.release(d) // relay's leftover buffer: splice from now on
		}
		l.makeInline(d.src) // bulk reads are not all first after an event (urgent_linux.go)
		l.acquire(d)
		n, err := l.readIn(d)
		if err == unix.EAGAIN {
			l.release(d)
			if d.src.urgent {
				d.bulk = false // stuck at the urgent mark: relay's read crosses it
				continue
			}
			d.src.readable = false
			return
		}
		if err != nil {
			l.fail(p, d.src, "read from", err)
			return
		}
		if n == 0 {
			spliced := d.kp != nil
			l.release(d)
			if spliced {
				// splice returns 0 at the urgent mark too once a FIN has
				// come: relay's read, which crosses the mark, tells.
				d.bulk = false
				continue
			}
			d.eof = true
			continue
		}
		d.pending, d.off = n, 0
		p.lastActive = l.now
		d.bulk = n >= scratchSize // a small read: back to relaying
	}
}

// writePending writes what it can of d's pending bytes. It reports whether
// pump should go on: false on backpressure (read nothing more until
// EPOLLOUT on dst), on failure, or once the budget is spent (d is queued
// again).
func (l *loop) writePending(d *dir, budget *int) bool {
	if !d.dst.writable {
		return false
	}
	n, err := l.writeOut(d)
	if err == unix.EAGAIN {
		d.dst.writable = false
		return false
	}
	if err != nil {
		l.fail(d.p, d.dst, "write to", err)
		return false
	}
	d.pending -= n
	l.wrote(d, n)
	if *budget -= n; *budget <= 0 {
		l.enqueue(d)
		return false
	}
	return true
}

// relay moves one read's worth of a quiet direction through the loop's
// shared scratch buffer: read, write at once, and keep only what dst did
// not take (in a pooled buffer). A read that fills the scratch buffer marks
// the direction bulk, which then splices until a read returns less than the
// scratch buffer holds (an idle spell alone does not end it). It reports
// whether pump should go on.
func (l *loop) relay(d *dir) bool {
	n, ok := l.readSrc(d, l.scratch)
	if !ok {
		return false
	}
	if n == 0 {
		d.eof = true
		return true
	}
	d.p.lastActive = l.now
	d.bulk = n == len(l.scratch)
	if !d.bulk && !d.src.hup && !d.src.urgent {
		// A stream socket's read returns less than asked only once its
		// queue is empty or at the urgent mark, and bytes (or a FIN, or
		// an urgent byte) arriving later raise a new edge: the read that
		// would return EAGAIN can go. A mark no event has reported yet
		// has its edge, with EPOLLPRI, still to come (urgent_linux.go).
		d.src.readable = false
	}
	return l.writeNow(d, l.scratch[:n])
}

// writeNow writes b to d.dst at once, as far as dst takes it without
// blocking, and keeps the rest as d's pending bytes in a pooled buffer
// (d has none pending). It reports false when the write failed: the pair
// is closed.
func (l *loop) writeNow(d *dir, b []byte) bool {
	m := 0
	if d.dst.writable {
		var err error
		m, err = writeNB(d.dst.fd, b)
		switch {
		case err == unix.EAGAIN:
			m = 0
			d.dst.writable = false
		case err != nil:
			l.fail(d.p, d.dst, "write to", err)
			return false
		}
		l.moved(d, m)
	}
	if m < len(b) {
		l.acquireBuf(d)
		l.setOut(d, append(d.buf[:0], b[m:]...))
	}
	return true
}

// moved counts n bytes written by d.
func (l *loop) moved(d *dir, n int) {
	d.bytes += int64(n)
	d.p.lastActive = l.now
	if d == &d.p.ab {
		l.g.bytesAToB.Add(int64(n))
	} else {
		l.g.bytesBToA.Add(int64(n))
	}
}

// readIn fills d's empty carrier from d.src; 0 bytes and no error is EOF.
func (l *loop) readIn(d *dir) (int, error) {
	for {
		var n int
		var err error
		if d.kp != nil {
			n, err = rawSplice(d.src.fd, d.kp.w, d.kp.size)
		} else {
			n, err = rawRead(d.src.fd, d.buf)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// writeOut writes pending bytes of d's carrier to d.dst.
func (l *loop) writeOut(d *dir) (int, error) {
	for {
		var n int
		var err error
		if d.kp != nil {
			n, err = rawSplice(d.kp.r, d.dst.fd, d.pending)
		} else {
			n, err = rawWrite(d.dst.fd, d.buf[d.off:d.off+d.pending])
			if err == nil {
				d.off += n
			}
		}
		if err == unix.EINTR {
			continue
		}
		if err == nil && n <= 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// halfClose ends direction d after its source's EOF: shut dst for writing,
// end the pair if the other direction is done too, else start the linger.
func (l *loop) halfClose(d *dir) {
	p := d.p
	d.done = true
	l.release(d)
	if p.firstEnd == core.SideNone {
		p.firstEnd = d.src.side
	}
	if p.dirTo(d.src).done {
		// Both directions are done: closing dst sends its FIN (its own
		// queue is empty, as its EOF was read), no shutdown needed.
		l.finish(p, core.ReasonEOF, core.SideNone, nil)
		return
	}
	if err := rawShutdown(d.dst.fd, unix.SHUT_WR); err != nil && !errors.Is(err, unix.ENOTCONN) {
		l.fail(p, d.dst, "shut down writing to", err)
		return
	}
	if p.lingerFrom == 0 {
		p.lingerFrom = l.now
		p.lastActive = l.now // the half-close counts as activity, as in pipe
		l.schedule(p)
	}
}

// fail ends the pair after an error on end e. What was already read from e
// is written to the other side while that side takes it without blocking.
func (l *loop) fail(p *pair, e *end, op string, err error) {
	why := core.ReasonError
	if errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNABORTED) {
		why = core.ReasonReset
	}
	err = fmt.Errorf("evloop: %s side %s (fd %d): %w", op, e.side, e.fd, err)
	survivor := p.other(e)
	if d := p.dirTo(survivor); d.pending > 0 && survivor.writable {
		for d.pending > 0 {
			n, werr := l.writeOut(d)
			if werr != nil {
				break
			}
			d.pending -= n
			l.wrote(d, n)
		}
	}
	l.finish(p, why, e.side, err)
}
