package evloop

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// Detaching a pair takes it off its loop at once, between two events: the
// loop stops watching its sockets and gives them back, with everything it
// held for the pair (bytes read and not yet written, records read and not
// yet opened, the record layers, the byte counts and the timers' progress)
// in a Snapshot. No peer is waited for. AddSnapshot makes a pair of a
// Snapshot on another Group, usually in another process, which carries on
// as if nothing happened.

// Detach takes the pairs off their loops, each as it is between two
// events, and returns, in the same order, a Snapshot or why the pair could
// not leave (ErrEnded, ErrStopping, ErrConnecting; it goes on untouched). A
// detached pair's done callback is never called. The pairs are detached a
// loop at a time, each loop's in one turn.
func (g *Group) Detach(pairs []Pair) ([]*Snapshot, []error) {
	snaps := make([]*Snapshot, len(pairs))
	errs := make([]error, len(pairs))
	byLoop := make(map[*loop][]int)
	for i, r := range pairs {
		if r.p == nil {
			errs[i] = ErrEnded
			continue
		}
		byLoop[r.l] = append(byLoop[r.l], i)
	}
	done := make(chan struct{}, len(byLoop))
	for l, idx := range byLoop {
		l.post(func(l *loop) {
			l.now = l.clock()
			for _, i := range idx {
				snaps[i], errs[i] = l.detach(pairs[i].p)
			}
			done <- struct{}{}
		})
	}
	for range byLoop {
		<-done
	}
	return snaps, errs
}

// detach takes p off the loop (loop goroutine).
func (l *loop) detach(p *pair) (*Snapshot, error) {
	switch {
	case p.closed:
		return nil, ErrEnded
	case p.stop != nil:
		return nil, ErrStopping
	case p.b.connecting || p.b.fd < 0:
		return nil, ErrConnecting
	}
	s := &Snapshot{
		A: p.a.fd, B: p.b.fd, Start: p.start, Opts: p.opts,
		Age: time.Duration(l.now - p.startNS), Idle: time.Duration(l.now - p.lastActive),
		Linger: -1, FirstEnd: p.firstEnd,
		TLS: [2]*tlsrec.State{p.a.tls, p.b.tls},
	}
	if p.lingerFrom != 0 {
		s.Linger = time.Duration(l.now - p.lingerFrom)
	}
	for i, d := range [2]*dir{&p.ab, &p.ba} {
		ds := &s.Dirs[i]
		pending, err := takePending(d)
		if err != nil {
			// The kernel pipe would not give its bytes back: the pair
			// cannot leave whole (not seen: they are in the pipe).
			return nil, fmt.Errorf("evloop: detach side %s: %w", d.src.side, err)
		}
		ds.Pending, ds.Bytes, ds.EOF, ds.Done = pending, d.bytes, d.eof, d.done
		if d.t != nil {
			ds.PendingPlain, ds.CloseNotify = d.t.plain, d.t.closeNotify
			if d.src.tls != nil && d.t.rlen > d.t.roff {
				d.src.tls.Unread = append([]byte(nil), d.t.rbuf[d.t.roff:d.t.rlen]...)
			}
			clear(d.t.rbuf[:d.t.rlen])
		}
	}
	p.closed = true
	p.done = nil
	if p.hidx >= 0 {
		l.timers.remove(p.hidx)
	}
	for _, e := range [2]*end{&p.a, &p.b} {
		if l.ends[int32(e.fd)] == e {
			delete(l.ends, int32(e.fd))
		}
		// The socket lives on (in this process or another): its entry in
		// the epoll set must go, or its events would keep coming here.
		_ = rawEpollCtl(l.epfd, unix.EPOLL_CTL_DEL, e.fd, nil)
		e.tls = nil
	}
	l.dropCarrier(&p.ab)
	l.dropCarrier(&p.ba)
	l.g.countOut()
	return s, nil
}

// takePending returns a copy of d's pending bytes and empties its carrier
// (a pooled buffer is cleared, as it may have held plaintext).
func takePending(d *dir) ([]byte, error) {
	if d.pending == 0 {
		return nil, nil
	}
	out := make([]byte, d.pending)
	if d.kp != nil {
		got := 0
		for got < len(out) {
			n, err := rawRead(d.kp.r, out[got:])
			if err == unix.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("read %d bytes back from a kernel pipe: %d read, %v", len(out), got, err)
			}
			got += n
		}
	} else {
		copy(out, d.buf[d.off:d.off+d.pending])
		clear(d.buf[d.off : d.off+d.pending])
	}
	d.pending = 0
	return out, nil
}

// AddSnapshot carries on a detached pair: a and b are its sockets (the
// Snapshot's A and B, with their record layers from s.TLS), and the pair
// goes on as it was, with its byte counts, timers, half-close and pending
// bytes. done is called as for Add. On error the Endpoints are still the
// caller's.
func (g *Group) AddSnapshot(a, b Endpoint, s *Snapshot, done func(core.Result)) (Pair, error) {
	p, err := endpointPair(a, b, s.Opts, done)
	if err != nil {
		return Pair{}, fmt.Errorf("evloop: adopt pair: %w", err)
	}
	p.start = s.Start
	p.firstEnd = s.FirstEnd
	// Offsets from the registration's clock (register adds it).
	p.startNS, p.lastActive = -int64(s.Age), -int64(s.Idle)
	if s.Linger >= 0 {
		p.lingerFrom = -int64(s.Linger) - 1 // never 0 ("none") after register
	}
	for i, d := range [2]*dir{&p.ab, &p.ba} {
		ds := &s.Dirs[i]
		if ds.Done && !ds.EOF || ds.PendingPlain < 0 || ds.Bytes < 0 {
			return Pair{}, fmt.Errorf("evloop: adopt pair: inconsistent direction %d", i)
		}
		d.bytes, d.eof, d.done = ds.Bytes, ds.EOF, ds.Done
		if len(ds.Pending) > 0 {
			d.buf = append([]byte(nil), ds.Pending...)
			d.off, d.pending = 0, len(ds.Pending)
		}
		if d.t != nil {
			d.t.plain, d.t.closeNotify = ds.PendingPlain, ds.CloseNotify
		}
	}
	return g.start(p)
}

// EndpointFromFD makes an Endpoint of a stream socket descriptor that the
// caller owns and gives up (non-blocking, close-on-exec), with the record
// layer of the TLS connection over it, if any.
func EndpointFromFD(fd int, st *tlsrec.State) (Endpoint, error) {
	if fd < 0 {
		return Endpoint{}, fmt.Errorf("evloop: endpoint from descriptor %d", fd)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return Endpoint{}, fmt.Errorf("evloop: descriptor %d: getsockopt SO_TYPE: %w", fd, err)
	}
	if typ != unix.SOCK_STREAM {
		return Endpoint{}, fmt.Errorf("evloop: descriptor %d: socket type %d: %w", fd, typ, errConnType)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return Endpoint{}, fmt.Errorf("evloop: descriptor %d: set non-blocking: %w", fd, err)
	}
	return Endpoint{fd: fd + 1, tls: st}, nil
}
