package evloop

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/internal/unread"
	"github.com/pipegate/pipegate/pipe/internal/core"
)

// dialState is what a pair made by a Listener keeps while (and after) its
// B side connects; pairs made by Add do not allocate it.
type dialState struct {
	next      func(prev error) (netip.AddrPort, bool)
	connected func()
	timeout   int64 // per attempt, ns; 0: none
	due       int64 // loop clock at which the current attempt times out; 0: none
	keepAlive time.Duration
	addr      netip.AddrPort // of the current attempt
}

// reasonDial is nextDeadline's reason for a connect attempt timing out: the
// pair is not ended, its next upstream is tried.
const reasonDial core.Reason = -1

// errNoUpstream ends a pair whose Setup.Next had no address at all.
var errNoUpstream = errors.New("evloop: no upstream address to connect to")

// dialNext starts connecting p's B side to the next address Setup.Next
// gives, after prev failed, or ends p when there is none.
func (l *loop) dialNext(p *pair, prev error) {
	for {
		ap, ok := p.dial.next(prev)
		if !ok {
			err := errNoUpstream
			if prev != nil {
				err = fmt.Errorf("evloop: connect side b to %s: %w", p.dial.addr, prev)
			}
			unread.Drop(p.a.fd) // so that A sees a FIN, not a reset, as HAProxy gives
			l.finish(p, core.ReasonError, core.SideB, err)
			return
		}
		p.dial.addr = ap
		fd, err := startConnect(ap, p.dial.keepAlive)
		if err != nil {
			prev = err
			continue
		}
		e := &p.b
		e.fd, e.readable, e.writable, e.connecting = fd, false, false, true
		if err := l.addEnd(e); err != nil {
			rawClose(fd)
			e.fd = -1
			l.finish(p, core.ReasonError, core.SideB, err)
			return
		}
		if p.dial.timeout > 0 {
			p.dial.due = l.now + p.dial.timeout
		}
		l.schedule(p)
		return
	}
}

// startConnect makes a non-blocking TCP socket (TCP_NODELAY, keep-alive if
// asked) and starts connecting it to ap.
func startConnect(ap netip.AddrPort, keepAlive time.Duration) (int, error) {
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, os.NewSyscallError("socket", e)
	}
	fd := int(r)
	one := int32(1)
	if _, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0); e != 0 {
		rawClose(fd)
		return -1, os.NewSyscallError("setsockopt", e)
	}
	if keepAlive > 0 {
		if err := setKeepAlive(fd, keepAlive); err != nil {
			rawClose(fd)
			return -1, err
		}
	}
	if family == unix.AF_INET {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: ntohs(ap.Port()), Addr: ap.Addr().As4()}
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: ntohs(ap.Port()), Addr: ap.Addr().As16()}
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	switch e {
	case 0, unix.EINPROGRESS, unix.EINTR: // EINTR: the connect goes on in the background
		return fd, nil
	}
	rawClose(fd)
	return -1, os.NewSyscallError("connect", e)
}

// connectEvent handles an event on a connecting B side: it reports whether
// the event is to be dispatched as usual (the connect succeeded).
func (l *loop) connectEvent(e *end, events uint32) bool {
	p := e.p
	if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		serr, err := unix.GetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && serr != 0 {
			err = os.NewSyscallError("connect", unix.Errno(serr))
		}
		if err != nil {
			l.redial(p, err)
			return false
		}
	}
	if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return false
	}
	e.connecting = false
	p.dial.due = 0
	p.lastActive = l.now // the idle timeout starts now (DialTimeout bounded the wait)
	l.schedule(p)
	if f := p.dial.connected; f != nil {
		f()
	}
	l.enqueue(&p.ab) // A's bytes, the prefix or A's EOF waited for the connect
	return !p.closed
}

// redial closes p's B socket after its connect failed with err and tries
// the next address.
func (l *loop) redial(p *pair, err error) {
	e := &p.b
	if l.ends[int32(e.fd)] == e {
		delete(l.ends, int32(e.fd))
	}
	rawClose(e.fd)
	e.fd = -1
	p.dial.due = 0
	l.dialNext(p, err)
}

// connectTimedOut is the error of an attempt that took DialTimeout.
var connectTimedOut = os.NewSyscallError("connect", unix.ETIMEDOUT)
