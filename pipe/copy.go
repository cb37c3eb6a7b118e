package pipe

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"pipegate/pipe/internal/sock"
)

// maxTLSRecord is the largest TLS record on the wire (TLS 1.2 worst case):
// when at least this much is queued on the socket, a blocking tls.Conn.Read
// is sure to complete a record without waiting for the peer.
const maxTLSRecord = 5 + 16384 + 2048

type outKind int

const (
	outStopped  outKind = iota // interrupted by the pipe itself
	outEOF                     // src ended its stream
	outReadErr                 // reading src failed
	outWriteErr                // writing dst failed
	outPanic                   // a conn method panicked
)

type outcome struct {
	kind outKind
	err  error
}

// direction moves bytes from src to dst.
type direction struct {
	p        *pipe
	src, dst *endpoint
	n        atomic.Int64 // bytes written to dst
	held     atomic.Int32 // pooled buffers and kernel pipes held now
}

// runDirection is the goroutine (or Join's own call) of one direction.
func runDirection(d *direction) {
	var out outcome
	defer func() {
		if r := recover(); r != nil {
			out = outcome{outPanic, fmt.Errorf("pipe: panic moving bytes from side %s to side %s: %v\n%s", d.p.side(d.src), d.p.side(d.dst), r, debug.Stack())}
		}
		d.p.directionEnded(d, out)
	}()
	out = d.copy()
}

// copy picks the cheapest way to move bytes for this pair of endpoints.
func (d *direction) copy() outcome {
	if len(d.src.prefix) > 0 {
		if out, ok := d.write(d.src.prefix); !ok {
			return out
		}
		d.src.prefix = nil
	}
	switch {
	case d.src.tls != nil:
		return d.copyTLS()
	case d.src.raw != nil && d.dst.plainSocket():
		return d.copySplice()
	case d.src.raw != nil:
		return d.copyRaw()
	}
	return d.copyBlocking()
}

// copySplice moves bytes socket to socket inside the kernel. While waiting
// it holds neither a kernel pipe nor a buffer.
func (d *direction) copySplice() outcome {
	for {
		if err := sock.WaitReadable(d.src.raw); err != nil {
			return d.readFailed(err)
		}
		kp, err := sock.GetPipe()
		if err != nil {
			return d.copyRaw() // out of fds for pipes: copy through user space
		}
		d.held.Add(1)
		out, more := d.spliceBurst(kp)
		sock.PutPipe(kp)
		d.held.Add(-1)
		if !more {
			return out
		}
	}
}

// spliceBurst splices until the source has nothing queued (more is true)
// or the direction ends.
func (d *direction) spliceBurst(kp *sock.Pipe) (out outcome, more bool) {
	for {
		n, again, err := kp.SpliceIn(d.src.raw, sock.MaxSplice)
		switch {
		case err != nil:
			return d.readFailed(err), false
		case again:
			return outcome{}, true
		case n == 0:
			return outcome{kind: outEOF}, false
		}
		w, err := kp.SpliceOut(d.dst.raw)
		d.count(w)
		if err != nil {
			return d.writeFailed(err), false
		}
	}
}

// copyRaw waits on the source socket without a buffer and borrows one only
// to move what is queued (destination is TLS or any net.Conn).
func (d *direction) copyRaw() outcome {
	for {
		if err := sock.WaitReadable(d.src.raw); err != nil {
			return d.readFailed(err)
		}
		buf := d.getBuf()
		out, more := d.rawBurst(buf)
		d.putBuf(buf)
		if !more {
			return out
		}
	}
}

func (d *direction) rawBurst(buf *sock.Buffer) (out outcome, more bool) {
	for {
		n, again, err := buf.ReadNonblock(d.src.raw, buf.B)
		switch {
		case err != nil:
			return d.readFailed(err), false
		case again:
			return outcome{}, true
		case n == 0:
			return outcome{kind: outEOF}, false
		}
		if out, ok := d.write(buf.B[:n]); !ok {
			return out, false
		}
	}
}

// copyTLS reads a *tls.Conn. It waits on the socket under it without a
// buffer, reads the first bytes of a record into a small array, then
// borrows a buffer and drains what crypto/tls holds already (reads with a
// past deadline return buffered records and never touch the socket; their
// timeouts are not sticky in crypto/tls).
func (d *direction) copyTLS() outcome {
	t := d.src.tls
	var small [64]byte
	wait := false // the handshake may have buffered records: read first
	for {
		if wait && d.src.raw != nil {
			if err := sock.WaitReadable(d.src.raw); err != nil {
				return d.readFailed(err)
			}
			// On EOF of the socket, tls.Conn.Read tells close_notify
			// (io.EOF) from truncation (io.ErrUnexpectedEOF).
		}
		wait = true
		n, err := t.Read(small[:])
		if n > 0 {
			if out, ok := d.tlsBurst(small[:n]); !ok {
				return out
			}
		}
		if err != nil {
			return d.readFailed(err)
		}
	}
}

// tlsBurst writes first and everything crypto/tls has decrypted or buffered
// behind it, using one pooled buffer for the burst.
func (d *direction) tlsBurst(first []byte) (outcome, bool) {
	t := d.src.tls
	bp := d.getBuf()
	defer d.putBuf(bp)
	buf := bp.B
	k := copy(buf, first)
	for {
		if !d.src.setReadDeadline(aLongTimeAgo) {
			d.write(buf[:k])
			return outcome{kind: outStopped}, false
		}
		var rerr error
		for rerr == nil {
			if k == len(buf) {
				if out, ok := d.write(buf[:k]); !ok {
					return out, false
				}
				k = 0
			}
			var m int
			m, rerr = t.Read(buf[k:])
			k += m
		}
		if !d.src.setReadDeadline(noDeadline) {
			d.write(buf[:k])
			return outcome{kind: outStopped}, false
		}
		if !isTimeout(rerr) {
			if out, ok := d.write(buf[:k]); !ok {
				return out, false
			}
			return d.readFailed(rerr), false
		}
		// Drained. If a whole record is surely queued on the socket, read
		// it now (without waiting on the peer) rather than going back to
		// the wait; this keeps bulk transfers in one burst.
		if d.src.raw == nil {
			break
		}
		if q, err := sock.Queued(d.src.raw); err != nil || q < maxTLSRecord {
			break
		}
		if k > len(buf)-16384 {
			if out, ok := d.write(buf[:k]); !ok {
				return out, false
			}
			k = 0
		}
		m, err := t.Read(buf[k:])
		k += m
		if err != nil {
			if out, ok := d.write(buf[:k]); !ok {
				return out, false
			}
			return d.readFailed(err), false
		}
	}
	if out, ok := d.write(buf[:k]); !ok {
		return out, false
	}
	return outcome{}, true
}

// copyBlocking serves sources that cannot be waited on without reading (a
// net.Conn of unknown type, TLS over one): the buffer is held while the
// read blocks.
func (d *direction) copyBlocking() outcome {
	bp := d.getBuf()
	defer d.putBuf(bp)
	buf := bp.B
	for {
		n, err := d.src.conn.Read(buf)
		if n > 0 {
			if out, ok := d.write(buf[:n]); !ok {
				return out
			}
		}
		if err != nil {
			return d.readFailed(err)
		}
	}
}

// write writes b to dst and counts it.
func (d *direction) write(b []byte) (outcome, bool) {
	if len(b) == 0 {
		return outcome{}, true
	}
	n, err := d.dst.conn.Write(b)
	d.count(int64(n))
	if err != nil {
		return d.writeFailed(err), false
	}
	return outcome{}, true
}

func (d *direction) count(n int64) {
	if n <= 0 {
		return
	}
	d.n.Add(n)
	d.p.touch()
	if e := d.p.eng; e != nil {
		if d.src == &d.p.a {
			e.bytesAToB.Add(n)
		} else {
			e.bytesBToA.Add(n)
		}
	}
}

func (d *direction) readFailed(err error) outcome {
	switch {
	case d.p.stopping.Load():
		return outcome{kind: outStopped}
	case isEOF(err):
		return outcome{kind: outEOF}
	}
	return outcome{outReadErr, err}
}

func (d *direction) writeFailed(err error) outcome {
	if d.p.stopping.Load() {
		return outcome{kind: outStopped}
	}
	return outcome{outWriteErr, err}
}

func (d *direction) getBuf() *sock.Buffer {
	d.held.Add(1)
	return getBuf()
}

func (d *direction) putBuf(b *sock.Buffer) {
	putBuf(b)
	d.held.Add(-1)
}
