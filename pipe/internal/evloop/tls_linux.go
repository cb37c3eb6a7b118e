package evloop

import (
	"io"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// tlsReadChunk bounds one read of a TLS src with a TLS dst, so that what
// it yields, sealed again, fits the direction's output buffer with the
// carried partial record: MaxRecord + tlsReadChunk plus record overheads
// stays under bufSize. With a plain dst a read takes what fits in the
// record buffer, and a partial record stays in place while tlsReadChunk
// bytes fit after it.
const tlsReadChunk = 32 << 10

// pumpTLS is pump for a direction with TLS on either end. It moves bytes
// through buffers (no splice: the bytes change on the way): a TLS src's
// records are read into d.t.rbuf and opened into d.buf (in place, then
// sealed into d.buf, for a TLS dst), a plain src's bytes are read into
// d.buf and sealed there. Both buffers go back to the loop's pool when the
// direction is idle with no partial record, so an idle TLS pair holds only
// its record layer state.
func (l *loop) pumpTLS(d *dir) {
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
			if d.dst.tls != nil && !d.t.closeNotify {
				d.t.closeNotify = true
				l.acquireBuf(d)
				out, err := d.dst.tls.SealCloseNotify(d.buf[:0])
				if err != nil {
					l.fail(p, d.dst, "seal close_notify for", err)
					return
				}
				l.setOut(d, out)
				d.t.plain = 0
				continue
			}
			l.halfClose(d)
			return
		}
		if !d.src.readable && !d.t.unopened {
			l.release(d)
			return
		}
		// Reads go on until EAGAIN here, not all first after an event: the
		// urgent byte must be inline before any of them (urgent_linux.go).
		l.makeInline(d.src)
		var ok bool
		if d.src.tls != nil {
			ok = l.readRecords(d, &budget)
		} else {
			ok = l.readPlainForTLS(d)
		}
		if !ok {
			return
		}
		if budget <= 0 && d.pending == 0 && !d.eof {
			// Bytes read count too: records that carry nothing (empty
			// ones, KeyUpdates) must not keep this direction in the loop
			// for ever while the other pairs wait.
			l.enqueue(d)
			return
		}
	}
}

// readRecords reads from a TLS src, opens the whole records and makes
// their plaintext (sealed again when dst runs TLS too) d's pending bytes,
// taking what it read from the budget. It reports whether pumpTLS should
// go on.
func (l *loop) readRecords(d *dir, budget *int) bool {
	p := d.p
	plainDst := d.dst.tls == nil
	if d.t.unopened {
		d.t.unopened = false // open what Export handed over before reading
	} else {
		if d.t.rbuf == nil {
			d.t.rbuf = l.getBuf()
		}
		// For a plain dst the plaintext goes to d.buf, which holds it
		// all: read what fits. For a TLS dst tlsReadChunk bounds it.
		end := len(d.t.rbuf)
		if !plainDst {
			end = d.t.rlen + tlsReadChunk
		}
		n, ok := l.readSrc(d, d.t.rbuf[d.t.rlen:end])
		if !ok {
			return false
		}
		if n == 0 {
			if d.t.rlen > d.t.roff {
				l.fail(p, d.src, "read from", io.ErrUnexpectedEOF)
				return false
			}
			d.eof = true // EOF without close_notify, between records: as crypto/tls
			return true
		}
		d.t.rlen += n
		*budget -= n
	}
	p.lastActive = l.now
	if plainDst {
		return l.openToPlain(d)
	}
	off, plainEnd := 0, 0
	for !d.eof {
		used, kind, plain, err := d.src.tls.Open(d.t.rbuf[off:d.t.rlen])
		if err != nil {
			l.fail(p, d.src, "open a TLS record from", err)
			return false
		}
		if used == 0 {
			break
		}
		off += used
		switch kind {
		case tlsrec.KindData:
			plainEnd += copy(d.t.rbuf[plainEnd:], plain) // plain lies after plainEnd
		case tlsrec.KindCloseNotify:
			d.eof = true // what follows close_notify is ignored
		}
	}
	if plainEnd > 0 && !l.emit(d, d.t.rbuf[:plainEnd]) {
		return false // the pair is closed and its buffers are gone
	}
	if d.eof {
		d.t.rlen = 0
	} else {
		d.t.rlen = copy(d.t.rbuf, d.t.rbuf[off:d.t.rlen]) // the partial record
	}
	return true
}

// openToPlain opens the whole records in d.t.rbuf[roff:rlen] for a plain
// dst, their plaintext in one piece in d.buf (pumpTLS writes it): no copy
// joins plaintexts opened between their records' headers and tags. A
// partial record stays where it is while the read after it has room,
// else it moves to the front. It reports whether pumpTLS should go on.
func (l *loop) openToPlain(d *dir) bool {
	t := d.t
	if len(d.buf) < bufSize { // none, or a preload's or a snapshot's exact buffer
		d.buf = l.getBuf()
	}
	out, off := d.buf[:0], t.roff
	for !d.eof {
		used, kind, o, err := d.src.tls.OpenAppend(out, t.rbuf[off:t.rlen])
		if err != nil {
			l.fail(d.p, d.src, "open a TLS record from", err)
			return false
		}
		if used == 0 {
			break
		}
		off += used
		out = o
		if kind == tlsrec.KindCloseNotify {
			d.eof = true // what follows close_notify is ignored
		}
	}
	if len(out) > 0 {
		l.setOut(d, out)
	}
	switch {
	case d.eof || off == t.rlen:
		t.rlen, t.roff = 0, 0
	case len(t.rbuf)-t.rlen >= tlsReadChunk:
		t.roff = off // the partial record stays; the next read goes after it
	default:
		t.rlen, t.roff = copy(t.rbuf, t.rbuf[off:t.rlen]), 0
	}
	return true
}

// readPlainForTLS reads plaintext from a plain src and seals it for the
// TLS dst in place: readv puts it in d.buf between the room for each
// record's header and trailer (tlsrec's PlainSlots), up to four records a
// call, and SealSlots seals it there, so it is never copied. It reports
// whether pumpTLS should go on.
func (l *loop) readPlainForTLS(d *dir) bool {
	st := d.dst.tls
	if len(d.buf) < bufSize { // none, or a preload's or a snapshot's exact buffer
		d.buf = l.getBuf()
	}
	l.slots = st.PlainSlots(l.slots[:0], d.buf)
	iov := l.iov[:min(len(l.slots), len(l.iov))]
	for i := range iov {
		iov[i].Base = unsafe.SliceData(l.slots[i])
		iov[i].SetLen(len(l.slots[i]))
	}
	n, err := readvNB(d.src.fd, iov)
	clear(l.slots)
	clear(l.iov[:])
	if err == unix.EAGAIN {
		d.src.readable, d.src.urgent = false, false // drained, past any urgent mark
		l.release(d)
		return false
	}
	if err != nil {
		l.fail(d.p, d.src, "read from", err)
		return false
	}
	if n == 0 {
		d.eof = true
		return true
	}
	d.p.lastActive = l.now
	out, err := st.SealSlots(d.buf, n)
	if err != nil {
		l.fail(d.p, d.dst, "seal a TLS record for", err)
		return false
	}
	d.off, d.pending = cap(d.buf)-cap(out), len(out) // out starts at the KeyUpdate slot or after it
	d.t.plain = n
	return true
}

// emit makes plain d's pending bytes: sealed for a TLS dst, copied for a
// plain one. It reports whether pumpTLS should go on.
func (l *loop) emit(d *dir, plain []byte) bool {
	if d.dst.tls == nil {
		return l.writeNow(d, plain) // from where the plaintext lies
	}
	l.acquireBuf(d)
	out, err := d.dst.tls.Seal(d.buf[:0], plain)
	if err != nil {
		l.fail(d.p, d.dst, "seal a TLS record for", err)
		return false
	}
	l.setOut(d, out)
	d.t.plain = len(plain)
	return true
}

// setOut makes out (built on d.buf[:0]) d's pending bytes.
func (l *loop) setOut(d *dir, out []byte) {
	if cap(out) != cap(d.buf) {
		d.buf = out[:cap(out)] // outgrew the pooled buffer: not pooled again
	}
	d.off, d.pending = 0, len(out)
}

// wrote counts n bytes just written by d (d.pending already lowered). For
// a TLS dst it counts plaintext, once all the records that carry it are
// written.
func (l *loop) wrote(d *dir, n int) {
	if d.dst.tls == nil {
		l.moved(d, n)
		return
	}
	d.p.lastActive = l.now
	if d.pending == 0 {
		l.moved(d, d.t.plain)
		d.t.plain = 0
	}
}

// readSrc reads what d.src has for b. It reports false when there is
// nothing to read now (src is marked not readable and d's buffers go back
// to the pool) or the read failed (the pair is closed).
func (l *loop) readSrc(d *dir, b []byte) (int, bool) {
	n, err := readNB(d.src.fd, b)
	if err == unix.EAGAIN {
		d.src.readable, d.src.urgent = false, false // drained, past any urgent mark
		l.release(d)
		return 0, false
	}
	if err != nil {
		l.fail(d.p, d.src, "read from", err)
		return 0, false
	}
	return n, true
}

// writeNB writes what the non-blocking fd takes of b, retrying EINTR.
func writeNB(fd int, b []byte) (int, error) {
	for {
		n, err := rawWrite(fd, b)
		if err != unix.EINTR {
			return max(n, 0), err
		}
	}
}

// readNB reads what the non-blocking fd has for b, retrying EINTR.
func readNB(fd int, b []byte) (int, error) {
	for {
		n, err := rawRead(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// readvNB reads what the non-blocking fd has into iov, retrying EINTR.
func readvNB(fd int, iov []unix.Iovec) (int, error) {
	for {
		n, err := rawReadv(fd, iov)
		if err != unix.EINTR {
			return n, err
		}
	}
}
