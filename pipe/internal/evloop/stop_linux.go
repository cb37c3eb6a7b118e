package evloop

import "github.com/pipegate/pipegate/pipe/internal/core"

// Pair is the caller's reference to a pair added to a Group, with which it
// can stop the pair. The zero Pair refers to nothing: its Stop does nothing.
type Pair struct {
	p *pair
	l *loop
}

// Stop makes the pair's loop end it at a clean point: it reads nothing more
// from either side, writes to A what was already read from B, then farewell
// (sealed as a TLS record, followed by close_notify, when A runs TLS), and
// closes both sides; the done callback gets ReasonStopped and FirstEnd as it
// was (SideNone unless a side had already ended its stream). Bytes read
// from A and not yet written to B are written while B takes them. When B
// had already ended its stream (A was shut for writing), nothing is written
// to A. The whole flush is bounded by core.FlushTimeout. The farewell
// counts in BytesBToA.
//
// Stop does not wait. It does nothing when the pair has ended already, and
// only the first Stop counts. farewell is not copied: it must not change
// afterwards. Stop must be called before the pair's done callback has
// returned (the caller orders the two, e.g. under a lock its done callback
// takes first): the loop may be gone after that.
func (r Pair) Stop(farewell []byte) {
	if r.p == nil {
		return
	}
	p := r.p
	r.l.post(func(l *loop) { l.stopPair(p, farewell) })
}

// stopPair starts the end of a pair that its owner stopped (loop goroutine).
func (l *loop) stopPair(p *pair, farewell []byte) {
	if p.closed || p.stop != nil {
		return
	}
	l.now = l.clock()
	p.stop = &stopState{farewell: farewell, due: l.now + int64(core.FlushTimeout)}
	l.schedule(p)
	if p.ba.done {
		// B ended its stream and A was told: nothing may follow that EOF.
		// What A sent is still written to B first.
		p.stop.baDone = true
		l.endStopped(p)
		return
	}
	l.enqueue(&p.ba)
}

// endStopped ends a stopped pair whose B→A is over, once A→B has written
// the bytes it had read (they go to B while it takes them, within the
// stop's bound).
func (l *loop) endStopped(p *pair) {
	if p.ab.pending > 0 && !p.ab.done {
		l.enqueue(&p.ab) // its stopStep ends the pair once they are written
		return
	}
	l.finish(p, core.ReasonStopped, core.SideNone, nil)
}

// stopStep moves on a direction of a stopped pair whose pending bytes are
// written; it reports whether pump should go on. A→B reads nothing more.
// B→A opens the records crypto/tls had read from B before the pair came
// to the loop, then makes the farewell its output, then ends the pair.
func (l *loop) stopStep(d *dir) bool {
	p := d.p
	if d == &p.ab {
		l.release(d)
		if p.stop.baDone {
			l.finish(p, core.ReasonStopped, core.SideNone, nil) // its pending bytes are written
		}
		return false
	}
	if d.t != nil && d.t.unopened {
		budget := pumpBudget
		return l.readRecords(d, &budget)
	}
	st := p.stop
	if !st.queued {
		st.queued = true
		if l.queueFarewell(d, st.farewell) {
			st.farewell = nil
			return true
		}
		if p.closed {
			return false // sealing failed: the pair is closed
		}
	}
	st.baDone = true
	l.endStopped(p)
	return false
}

// queueFarewell makes farewell d's pending output, sealed and followed by
// close_notify for a TLS dst, so that A's peer reads a clean end of stream
// after it. It reports whether there is anything to write.
func (l *loop) queueFarewell(d *dir, farewell []byte) bool {
	tlsDst := d.dst.tls != nil
	if tlsDst && d.t.closeNotify || !tlsDst && len(farewell) == 0 {
		return false
	}
	l.release(d) // a kernel pipe left from splicing goes back: the output is a buffer
	l.acquireBuf(d)
	if !tlsDst {
		l.setOut(d, append(d.buf[:0], farewell...))
		return true
	}
	out := d.buf[:0]
	var err error
	if len(farewell) > 0 {
		if out, err = d.dst.tls.Seal(out, farewell); err != nil {
			l.fail(d.p, d.dst, "seal the farewell for", err)
			return false
		}
	}
	if out, err = d.dst.tls.SealCloseNotify(out); err != nil {
		l.fail(d.p, d.dst, "seal close_notify for", err)
		return false
	}
	d.t.closeNotify = true
	l.setOut(d, out)
	d.t.plain = len(farewell)
	return true
}
