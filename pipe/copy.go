package pipe

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/pipegate/pipegate/pipe/internal/sock"
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
	outMoved                   // the direction goes on in a fresh goroutine (burst.go)
	outDetached                // interrupted by a detach (detach_go.go)
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
	kp       *sock.Pipe   // kernel pipe held while splicing
	buf      *sock.Buffer // buffer held while copying from a socket
	bulk     bool         // copySplice: a read filled the buffer, splice until a smaller one
	resumed  bool         // runs on a goroutine started by a move (burst.go): wait first
	grown    bool         // this goroutine did TLS work: move on when idle (burst.go)
	moves    atomic.Int32 // hand-overs to fresh goroutines so far
	ended    bool         // directionEnded has run; p.h.mu
}

// runDirection is the goroutine (or Join's own call) of one direction.
func runDirection(d *direction) {
	var out outcome
	defer func() {
		if r := recover(); r != nil {
			out = outcome{outPanic, fmt.Errorf("pipe: panic moving bytes from side %s to side %s: %v\n%s", d.p.side(d.src), d.p.side(d.dst), r, debug.Stack())}
		}
		if out.kind == outMoved {
			d.resumed, d.grown = true, false
			go runDirection(d)
			return
		}
		if out.kind == outDetached {
			d.p.directionDetached(d)
			return
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
		d.grown = d.dst.tls != nil && d.movesOn()
	}
	if d.src.raw != nil {
		d.src.inlineUrgent() // before any read of the socket (urgent.go)
	}
	switch d.path() {
	case pathTLS:
		return d.copyTLS()
	case pathSplice:
		return d.copySplice()
	case pathRaw:
		return d.copyRaw()
	}
	return d.copyBlocking()
}

// copyPath names how a direction moves bytes.
type copyPath string

const (
	pathSplice   copyPath = "splice"   // socket to socket: splice in the kernel for bulk bytes
	pathRaw      copyPath = "raw"      // socket to TLS or any net.Conn, pooled buffer
	pathTLS      copyPath = "tls"      // from TLS, pooled buffer
	pathBlocking copyPath = "blocking" // from any other net.Conn, buffer held while reading
)

func (d *direction) path() copyPath {
	switch {
	case d.src.tls != nil:
		return pathTLS
	case d.src.raw != nil && d.dst.plainSocket():
		return pathSplice
	case d.src.raw != nil:
		return pathRaw
	}
	return pathBlocking
}

// copySplice moves bytes between two plain sockets. A burst starts with a
// read into a pooled buffer, written out at once; a read that fills the
// buffer turns the direction to splice(2), socket to socket inside the
// kernel, until a splice moves less than a buffer holds. The buffer or
// kernel pipe is taken inside the read callback and given back before
// parking, so a waiting direction holds none (and costs no extra system
// call). A read, not a splice, is what finds the socket drained or ended:
// a splice moves nothing at the urgent mark (EAGAIN, or 0 once a FIN has
// come) while a read crosses it (urgent.go).
func (d *direction) copySplice() outcome {
	defer d.dropPipe()
	defer d.dropBuf()
	for {
		if err := d.src.raw.Read(d.socketReady); err != nil {
			return d.readFailed(err)
		}
		if d.kp != nil {
			n, err := d.kp.LastIn()
			if err != nil {
				return d.readFailed(err)
			}
			w, err := d.kp.SpliceOut(d.dst.raw)
			d.count(w)
			if err != nil {
				return d.writeFailed(err)
			}
			if n < bufSize {
				d.bulk = false
				d.dropPipe()
			}
			continue
		}
		n, err := d.buf.LastRead()
		switch {
		case err != nil:
			return d.readFailed(err)
		case n == 0:
			return outcome{kind: outEOF}
		}
		if out, ok := d.write(d.buf.B[:n]); !ok {
			return out
		}
		d.bulk = n == len(d.buf.B)
	}
}

// socketReady is the read callback of copySplice: a splice while the
// direction is bulk, else (or when the splice moved nothing) a read.
func (d *direction) socketReady(fd uintptr) bool {
	if d.bulk && d.takePipe() {
		if !d.kp.TrySpliceIn(fd, sock.MaxSplice) {
			if n, err := d.kp.LastIn(); n > 0 || err != nil {
				return true
			}
		}
		// Nothing moved: the socket is drained, ended, or stopped at the
		// urgent mark. A read tells, and crosses the mark.
		d.dropPipe()
	}
	return d.readReady(fd)
}

// takePipe gives d a kernel pipe for splicing, in place of its buffer; it
// reports false when no pipe can be made (out of descriptors): d then
// copies through its buffer.
func (d *direction) takePipe() bool {
	if d.kp != nil {
		return true
	}
	kp, err := sock.GetPipe()
	if err != nil {
		return false
	}
	d.dropBuf()
	d.kp = kp
	d.held.Add(1)
	return true
}

func (d *direction) dropPipe() {
	if d.kp != nil {
		sock.PutPipe(d.kp)
		d.kp = nil
		d.held.Add(-1)
	}
}

// copyRaw reads the source socket into a pooled buffer taken inside the
// read callback and given back before parking (the destination is TLS or
// any net.Conn).
func (d *direction) copyRaw() outcome {
	defer d.dropBuf()
	for {
		armed := d.armMove()
		err := d.src.raw.Read(d.readReady)
		if armed {
			if out, stop := d.disarmMove(err); stop {
				return out
			}
		}
		if err != nil {
			return d.readFailed(err)
		}
		n, err := d.buf.LastRead()
		switch {
		case err != nil:
			return d.readFailed(err)
		case n == 0:
			return outcome{kind: outEOF}
		}
		if out, ok := d.write(d.buf.B[:n]); !ok {
			return out
		}
		d.grown = d.dst.tls != nil && d.movesOn()
	}
}

// readReady is the read callback of copyRaw.
func (d *direction) readReady(fd uintptr) bool {
	if d.buf == nil {
		d.buf = d.getBuf()
	}
	if d.buf.TryRead(fd) {
		d.dropBuf() // nothing queued: park empty-handed
		return false
	}
	return true
}

func (d *direction) dropBuf() {
	if d.buf != nil {
		d.putBuf(d.buf)
		d.buf = nil
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
	wait := d.resumed // at first the handshake may have buffered records: read first
	for {
		if wait && d.src.raw != nil {
			armed := d.armMove()
			err := sock.WaitReadable(d.src.raw)
			if armed {
				if out, stop := d.disarmMove(err); stop {
					return out
				}
			}
			if err != nil {
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
		d.grown = d.movesOn()
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
		if err := d.src.setReadDeadline(aLongTimeAgo); err != nil {
			// Stopping, or a transport without deadlines: nothing can be
			// drained without blocking, so deliver what was read.
			out, ok := d.write(buf[:k])
			switch {
			case !ok:
				return out, false
			case err == errStopping:
				return outcome{kind: outStopped}, false
			}
			return outcome{}, true
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
		if d.src.setReadDeadline(noDeadline) == errStopping {
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
	case d.p.detachTried.Load() && isTimeout(err):
		// Only a detach interrupts the reads of a plain pipe that is not
		// stopping (detach_go.go).
		return outcome{kind: outDetached}
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
