package evloop

import "golang.org/x/sys/unix"

// kpipe is a kernel pipe used to splice bytes from one socket to another.
type kpipe struct {
	r, w int
	size int // capacity in bytes
}

func newKpipe(want int) (*kpipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	kp := &kpipe{r: fds[0], w: fds[1], size: 64 << 10}
	if want > kp.size {
		unix.FcntlInt(uintptr(kp.w), unix.F_SETPIPE_SZ, want) // best effort
	}
	if n, err := unix.FcntlInt(uintptr(kp.w), unix.F_GETPIPE_SZ, 0); err == nil && n > 0 {
		kp.size = n
	}
	return kp, nil
}

func (kp *kpipe) close() {
	unix.Close(kp.r)
	unix.Close(kp.w)
}

// acquire gives d a carrier: a pooled or new kernel pipe, or a buffer when
// splicing is off or no pipe can be made (e.g. out of descriptors).
func (l *loop) acquire(d *dir) {
	if d.kp != nil || d.buf != nil {
		return
	}
	if !l.g.cfg.NoSplice {
		if n := len(l.pipes); n > 0 {
			d.kp = l.pipes[n-1]
			l.pipes[n-1] = nil
			l.pipes = l.pipes[:n-1]
			return
		}
		if kp, err := newKpipe(l.pipeCap); err == nil {
			d.kp = kp
			return
		}
	}
	l.acquireBuf(d)
}

// acquireBuf gives d a pooled buffer unless it has one.
func (l *loop) acquireBuf(d *dir) {
	if d.buf == nil {
		d.buf = l.getBuf()
	}
}

// release returns d's carrier to the pool; d must hold no pending bytes.
func (l *loop) release(d *dir) {
	if d.pending > 0 {
		return
	}
	if d.kp != nil {
		if len(l.pipes) < l.g.cfg.MaxIdlePipes {
			l.pipes = append(l.pipes, d.kp)
		} else {
			d.kp.close()
		}
		d.kp = nil
	}
	if d.buf != nil {
		l.putBuf(d.buf)
		d.buf = nil
	}
	if t := d.t; t != nil && t.rbuf != nil && t.rlen == 0 {
		l.putBuf(t.rbuf)
		t.rbuf = nil
	}
}

// putBuf pools a buffer that came from acquireBuf or getBuf.
func (l *loop) putBuf(b []byte) {
	if len(b) == bufSize && len(l.bufs) < l.g.cfg.MaxIdlePipes { // not a preload
		l.bufs = append(l.bufs, b)
	}
}

// getBuf returns a pooled or new buffer of bufSize bytes.
func (l *loop) getBuf() []byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs[n-1] = nil
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, bufSize)
}

// dropCarrier frees d's carrier when its pair closes; a kernel pipe that
// still holds bytes is closed rather than pooled.
func (l *loop) dropCarrier(d *dir) {
	if d.pending > 0 && d.kp != nil {
		d.kp.close()
		d.kp = nil
	}
	d.pending = 0
	if d.t != nil {
		d.t.rlen, d.t.roff = 0, 0
	}
	l.release(d)
}

// preload makes bytes already read from d.src (a peeked prefix) the first
// pending bytes of d, in a buffer of their own that is dropped once written;
// for a TLS dst they are sealed first.
func (d *dir) preload(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if d.dst.tls != nil {
		sealed, err := d.dst.tls.Seal(nil, b)
		if err != nil {
			return err
		}
		d.buf, d.off, d.pending, d.t.plain = sealed, 0, len(sealed), len(b)
		return nil
	}
	d.buf = append([]byte(nil), b...)
	d.off, d.pending = 0, len(b)
	return nil
}

// preloadRecords makes the records crypto/tls had read from a TLS src but
// not opened the first bytes d reads; pumpTLS opens them before reading.
func (d *dir) preloadRecords() {
	st := d.src.tls
	if st == nil || len(st.Unread) == 0 {
		return
	}
	d.t.rbuf = make([]byte, max(bufSize, len(st.Unread)+tlsReadChunk))
	d.t.rlen = copy(d.t.rbuf, st.Unread)
	d.t.unopened = true
	st.Unread = nil
}
