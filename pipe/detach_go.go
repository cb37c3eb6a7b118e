package pipe

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// Detaching a pipe on goroutines: only between two plain stream sockets
// (TLS there lives in crypto/tls, whose record layer cannot be handed
// over). Both directions are stopped at a clean point the way Stop does:
// their reads are interrupted, and a direction ends only once everything
// it read is written; then the sockets are duplicated and the Go conns
// closed, which sends nothing (the duplicates keep the sockets open). A
// direction whose peer does not take what it read holds the detach until
// ctx ends: then the interrupted directions start again, untouched.

// goDetach is a Detach of a goroutine pipe under way; p.h.mu guards it.
type goDetach struct {
	ended     [2]bool       // A→B, B→A returned with outDetached
	done      chan struct{} // closed once both ended, or failed
	failed    error         // the pipe ended meanwhile, or a Stop came
	cancelled bool          // the detach gave up: relaunch what ended
}

// detachGo is Handle.Detach for a goroutine pipe.
func (p *pipe) detachGo(ctx context.Context) (*Detached, error) {
	if !evloop.Supported || !p.a.plainSocket() || !p.b.plainSocket() || !isStreamConn(p.a.conn) || !isStreamConn(p.b.conn) {
		return nil, fmt.Errorf("pipe: detach: a pipe on goroutines that is not between two plain sockets: %w", ErrNotDetachable)
	}
	p.h.mu.Lock()
	switch {
	case p.h.detached:
		next := p.h.next
		p.h.mu.Unlock()
		if next != nil { // it went on here after a failed hand-over
			return next.Detach(ctx)
		}
		return nil, fmt.Errorf("pipe: detach: the pipe has left: %w", ErrNotDetachable)
	case p.stopping.Load() || p.reasonSet || p.h.stopped || p.ab.ended || p.ba.ended:
		p.h.mu.Unlock()
		return nil, fmt.Errorf("pipe: detach: a pipe on goroutines that is ending or half-closed: %w", ErrNotDetachable)
	case p.detach != nil:
		p.h.mu.Unlock()
		return nil, fmt.Errorf("pipe: detach: already being detached")
	}
	gd := &goDetach{done: make(chan struct{})}
	p.detach = gd
	p.detachTried.Store(true)
	p.h.mu.Unlock()
	p.a.interruptReads()
	p.b.interruptReads()
	select {
	case <-gd.done:
	case <-ctx.Done():
	}
	p.h.mu.Lock()
	if gd.failed == nil && !(gd.ended[0] && gd.ended[1]) {
		gd.failed = ctx.Err()
	}
	if err := gd.failed; err != nil {
		p.abortDetachLocked(gd)
		p.h.mu.Unlock()
		return nil, err
	}
	p.h.mu.Unlock()
	return p.leaveGo()
}

// abortDetachLocked lets the pipe go on after a detach that did not
// happen: reads are resumed and the directions that ended start again.
func (p *pipe) abortDetachLocked(gd *goDetach) {
	gd.cancelled = true
	p.detach = nil
	if !p.stopping.Load() {
		p.a.resumeReads()
		p.b.resumeReads()
		for i, d := range [2]*direction{&p.ab, &p.ba} {
			if gd.ended[i] {
				gd.ended[i] = false
				go runDirection(d)
			}
		}
		return
	}
	// A Stop or an end is under way: the directions that ended here end
	// there too.
	for i, d := range [2]*direction{&p.ab, &p.ba} {
		if gd.ended[i] {
			gd.ended[i] = false
			go p.directionEnded(d, outcome{kind: outStopped})
		}
	}
}

// directionDetached is directionEnded for a direction interrupted by a
// detach (outDetached).
func (p *pipe) directionDetached(d *direction) {
	p.h.mu.Lock()
	gd := p.detach
	if gd != nil && !gd.cancelled {
		i := 0
		if d == &p.ba {
			i = 1
		}
		gd.ended[i] = true
		if gd.ended[0] && gd.ended[1] && gd.failed == nil {
			close(gd.done)
		}
		p.h.mu.Unlock()
		return
	}
	stopping := p.stopping.Load()
	p.h.mu.Unlock()
	if stopping {
		p.directionEnded(d, outcome{kind: outStopped}) // a Stop or an end came meanwhile
		return
	}
	go runDirection(d) // the detach gave up before this direction saw it
}

// detachInterruptedLocked is called by directionEnded, p.h.mu held, when a
// direction ends for any other reason during a detach (or a Stop comes):
// the detach fails and the pipe goes on ending as usual.
func (p *pipe) detachInterruptedLocked(why error) {
	gd := p.detach
	if gd == nil || gd.cancelled || gd.failed != nil {
		return
	}
	done := gd.ended[0] && gd.ended[1]
	gd.failed = why
	if !done {
		close(gd.done)
	}
}

// leaveGo takes the stopped pipe's sockets and state out (both directions
// have ended with outDetached, nothing read is unwritten).
func (p *pipe) leaveGo() (*Detached, error) {
	fa, err := dupSocket(p.a.raw)
	if err != nil {
		p.h.mu.Lock()
		p.abortDetachLocked(p.detach)
		p.h.mu.Unlock()
		return nil, err
	}
	fb, err := dupSocket(p.b.raw)
	if err != nil {
		unix.Close(fa)
		p.h.mu.Lock()
		p.abortDetachLocked(p.detach)
		p.h.mu.Unlock()
		return nil, err
	}
	p.h.mu.Lock()
	p.stopTimersLocked()
	p.detach = nil
	p.h.detached = true
	tag := p.h.tag
	p.h.mu.Unlock()
	if p.stopCtx != nil {
		p.stopCtx()
	}
	now := time.Since(p.res.Start)
	s := &evloop.Snapshot{
		A: fa, B: fb, Start: p.res.Start, Opts: p.opts,
		Age: now, Idle: max(now-time.Duration(p.last.Load()), 0), Linger: -1,
		FirstEnd: SideNone,
	}
	s.Dirs[0].Bytes, s.Dirs[1].Bytes = p.ab.n.Load(), p.ba.n.Load()
	if s.Opts.HalfCloseLinger == 0 {
		s.Opts.HalfCloseLinger = DefaultHalfCloseLinger
	}
	// Closing Go's descriptors sends nothing: the duplicates keep the
	// sockets open.
	_ = p.a.conn.Close()
	_ = p.b.conn.Close()
	det := detached(s, tag, nil)
	if p.eng != nil {
		p.eng.leave(p)
	}
	return det, nil // the caller calls p.h.finished once it has gone, or stayGo
}

// stayGo carries a pipe that leaveGo took out, and that could not be
// sent, on on e's loops: its Handle goes on as the new pipe's (Stop,
// SetTag, Detach; Done closes once that one has ended), and its
// afterClose runs once, there, or here with the error should it not be
// carried on (out of descriptors, say).
func (e *Engine) stayGo(p *pipe, det *Detached) error {
	after := func(r Result) {
		if p.afterClose != nil {
			p.afterClose(r)
		}
		p.h.finished()
	}
	h, err := e.adoptAgain(det, after)
	if err != nil {
		r := p.res
		r.End, r.Reason, r.Err = time.Now(), ReasonError, fmt.Errorf("pipe: adopt again after a failed hand-over: %w", err)
		r.BytesAToB, r.BytesBToA = p.ab.n.Load(), p.ba.n.Load()
		go after(r)
		return err
	}
	p.h.mu.Lock()
	p.h.next = h
	stop, fw := p.h.stopped, p.h.farewell
	p.h.farewell = nil
	p.h.mu.Unlock()
	if stop {
		h.Stop(fw) // a Stop came while the pipe was away
	}
	return nil
}

// resumeReads undoes interruptReads.
func (e *endpoint) resumeReads() {
	e.mu.Lock()
	e.stopping = false
	_ = e.conn.SetReadDeadline(noDeadline)
	e.mu.Unlock()
}

// isStreamConn reports a *net.TCPConn, or a *net.UnixConn of a stream
// socket.
func isStreamConn(c net.Conn) bool {
	switch c := c.(type) {
	case *net.TCPConn:
		return true
	case *net.UnixConn:
		rc, err := c.SyscallConn()
		if err != nil {
			return false
		}
		typ := -1
		_ = rc.Control(func(fd uintptr) {
			typ, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		})
		return typ == unix.SOCK_STREAM
	}
	return false
}

// dupSocket duplicates a socket's descriptor (close-on-exec).
func dupSocket(rc syscall.RawConn) (int, error) {
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, fmt.Errorf("pipe: detach: %w", err)
	}
	if derr != nil {
		return -1, fmt.Errorf("pipe: detach: dup: %w", os.NewSyscallError("fcntl", derr))
	}
	return nfd, nil
}
