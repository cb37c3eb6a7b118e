package evloop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pipegate/pipegate/internal/unread"
	"github.com/pipegate/pipegate/pipe/internal/core"
)

// lnPad marks a listener's epoll events (EpollEvent.Pad); socket sequence
// numbers never take this value, and 0 is the eventfd's.
const lnPad = -1

// acceptBatch is how many connections a loop accepts per readiness event
// before it turns to its pairs again.
const acceptBatch = 16

// acceptDrain bounds the connections a loop accepts as a listener
// leaves it (acceptQueued): the accept queue's length at most.
const acceptDrain = 1 << 16

// acceptPause is how long a loop stops accepting on a listener after an
// error such as EMFILE, which would otherwise repeat at once.
const acceptPause = 100 * time.Millisecond

// Listener is a listening TCP socket whose connections the Group's loops
// accept themselves, with no goroutine per connection: every loop waits
// on it (EPOLLEXCLUSIVE), accepts, asks the Acceptor and connects the
// upstream side without blocking. Loops with a listener wait in
// epoll_wait themselves rather than in Go's netpoller.
type Listener struct {
	g   *Group
	fd  int
	acc Acceptor
	// oobInline: SO_OOBINLINE is set on the listening socket, and so on
	// the sockets it accepts (urgent_linux.go).
	oobInline bool
	closed    atomic.Bool
	acks      sync.WaitGroup // loops that still have the listener registered
	once      sync.Once
}

// Listen makes the Group's loops accept connections on ln, a
// *net.TCPListener, and hand each to acc.Accept. ln's socket is taken as
// FromConn takes a conn's: ln is closed (Go stops polling it) and the
// socket lives on in the Listener until Close. On error ln is untouched.
func (g *Group) Listen(ln net.Listener, acc Acceptor) (*Listener, error) {
	if acc.Accept == nil {
		return nil, errors.New("evloop: listen: Acceptor.Accept is nil")
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("evloop: listen on %T: %w (need *net.TCPListener)", ln, ErrUnsupported)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("evloop: listen on %s: %w", ln.Addr(), err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("evloop: listen on %s: %w", ln.Addr(), err)
	}
	if derr != nil {
		return nil, fmt.Errorf("evloop: listen on %s: dup: %w", ln.Addr(), derr)
	}
	// Accepted sockets inherit TCP_NODELAY from the listener: one call here
	// instead of one per connection.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("evloop: listen on %s: TCP_NODELAY: %w", ln.Addr(), err)
	}
	// And SO_OOBINLINE: urgent bytes are carried in band, and an accepted
	// socket that has it needs no call when urgent data or a bulk transfer
	// comes (urgent_linux.go). An MPTCP listener (Go's default) refuses it:
	// its sockets are then made inline when needed.
	inline := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1) == nil
	l := &Listener{g: g, fd: fd, acc: acc, oobInline: inline}
	g.mu.Lock()
	if g.closing || g.noListen {
		g.mu.Unlock()
		unix.Close(fd)
		return nil, ErrShuttingDown
	}
	if g.listeners == nil {
		g.listeners = map[*Listener]struct{}{}
	}
	g.listeners[l] = struct{}{}
	g.mu.Unlock()
	tl.Close() // Go's descriptor; the socket lives on in fd (O_NONBLOCK is shared)
	l.acks.Add(len(g.loops))
	for _, lp := range g.loops {
		lp.post(func(lp *loop) { lp.addListener(l) })
	}
	return l, nil
}

// Close stops accepting: once it returns no loop accepts on the listener
// or calls its Acceptor any more, and the socket is closed. It must not be
// called from an Acceptor.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		for _, lp := range l.g.loops {
			lp.post(func(lp *loop) { lp.dropListener(l) })
		}
		l.acks.Wait()
		err = unix.Close(l.fd)
		l.g.mu.Lock()
		delete(l.g.listeners, l)
		l.g.mu.Unlock()
	})
	return err
}

// lnState is a listener as one loop sees it.
type lnState struct {
	ln     *Listener
	paused int64 // loop clock until which accepting is paused; 0: registered
}

func (lp *loop) addListener(ln *Listener) {
	if ln.closed.Load() {
		ln.acks.Done()
		return
	}
	lp.ownThread()
	st := &lnState{ln: ln}
	lp.listeners[int32(ln.fd)] = st
	if err := lp.watchListener(ln); err != nil {
		lp.pauseListener(st, err)
	}
}

func (lp *loop) watchListener(ln *Listener) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(ln.fd), Pad: lnPad}
	err := rawEpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, ln.fd, &ev)
	if err == unix.EINVAL { // before Linux 4.5: every loop wakes, one accepts
		ev.Events = unix.EPOLLIN
		err = rawEpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, ln.fd, &ev)
	}
	if err != nil {
		return fmt.Errorf("evloop: register listener with epoll: %w", err)
	}
	return nil
}

func (lp *loop) dropListener(ln *Listener) {
	st := lp.listeners[int32(ln.fd)]
	if st != nil && st.ln == ln {
		delete(lp.listeners, int32(ln.fd))
		if st.paused == 0 {
			rawEpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
			lp.acceptQueued(ln)
		}
		ln.acks.Done()
	}
	// else: addListener saw it closed and acknowledged already
}

// acceptQueued accepts, as the listener leaves the loop, the connections
// already queued on it (at most acceptDrain). A connection wakes one
// waiter only (EPOLLEXCLUSIVE): this loop may have had the wake-up of
// one and not accepted it (Close had begun, or a batch was full), and
// no other loop, here or in another process sharing the socket (a binary
// upgrade), is woken for it again: it would wait in the queue for the
// next connection. Those arriving from now on wake the others.
func (lp *loop) acceptQueued(ln *Listener) {
	for range acceptDrain {
		a, e := accept(ln.fd)
		switch {
		case e == 0:
			lp.setUp(ln, a)
		case !peersFault(e):
			return // EAGAIN: none left; another error: left to the others
		}
	}
}

// accept takes one connection from the listening socket fd (non-blocking,
// close-on-exec), with its peer's address.
func accept(fd int) (Accepted, unix.Errno) {
	var sa unix.RawSockaddrAny
	salen := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&sa)),
		uintptr(unsafe.Pointer(&salen)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return Accepted{}, e
	}
	return Accepted{FD: int(r), Peer: peerOf(&sa)}, 0
}

// peersFault reports the accept(2) errors of a connection that failed
// (or an interrupted call): the next may not.
func peersFault(e unix.Errno) bool {
	switch e {
	case unix.EINTR, unix.ECONNABORTED, unix.EPROTO, unix.EPERM,
		unix.ENETDOWN, unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET,
		unix.EHOSTUNREACH, unix.EOPNOTSUPP, unix.ENETUNREACH:
		return true
	}
	return false
}

// pauseListener stops accepting on st for acceptPause (EMFILE and the like
// would repeat at every wait) and tells the Acceptor.
func (lp *loop) pauseListener(st *lnState, err error) {
	if st.paused == 0 {
		rawEpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, st.ln.fd, nil)
	}
	st.paused = lp.now + int64(acceptPause)
	if f := st.ln.acc.Error; f != nil {
		f(err, acceptPause)
	}
}

// resumeListeners registers again the listeners whose pause is over, and
// returns the earliest pause still running (0: none).
func (lp *loop) resumeListeners() int64 {
	var next int64
	for _, st := range lp.listeners {
		if st.paused == 0 {
			continue
		}
		if st.paused > lp.now {
			if next == 0 || st.paused < next {
				next = st.paused
			}
			continue
		}
		st.paused = 0
		if err := lp.watchListener(st.ln); err != nil {
			lp.pauseListener(st, err)
			next = st.paused
		}
	}
	return next
}

// acceptFrom accepts up to acceptBatch connections and sets each up.
func (lp *loop) acceptFrom(st *lnState) {
	ln := st.ln
	for range acceptBatch {
		if ln.closed.Load() {
			return
		}
		a, e := accept(ln.fd)
		switch {
		case e == 0:
			lp.setUp(ln, a)
			continue
		case e == unix.EAGAIN:
			return
		case peersFault(e):
			continue // this connection failed; the next may not (accept(2))
		}
		lp.pauseListener(st, os.NewSyscallError("accept4", e))
		return
	}
}

// peerOf returns the address accept4 filled in.
func peerOf(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), ntohs(a.Port))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), ntohs(a.Port))
	}
	return netip.AddrPort{}
}

func ntohs(p uint16) uint16 { return p<<8 | p>>8 }

// setUp asks the Acceptor about an accepted socket and, given a Setup,
// makes the pair on this loop and starts connecting its B side.
func (lp *loop) setUp(ln *Listener, a Accepted) {
	lp.yield = true // Accept may start goroutines (a hand-off to Go)
	p := new(pair)
	a.Pair = Pair{p: p, l: lp}
	s := ln.acc.Accept(a)
	if s == nil {
		return
	}
	var opts core.Options
	if s.Options != nil {
		opts = *s.Options
	}
	initPair(p, a.FD, -1, opts, s.AfterClose)
	p.inline, p.b.connecting = s.InlineAfterClose, true
	p.a.oobInline = ln.oobInline
	p.dial = &dialState{next: s.Next, timeout: int64(s.DialTimeout), connected: s.Connected, keepAlive: s.KeepAlive}
	p.ab.preload(s.Prefix) // plain: cannot fail
	lp.g.mu.Lock()
	// Shutdown closes the listeners before it sets closing, and so before
	// any forceClose: no pair is made while the loops close every pair.
	lp.g.active++
	lp.g.mu.Unlock()
	p.startNS, p.lastActive = lp.now, lp.now
	if s.KeepAlive > 0 {
		if err := setKeepAlive(a.FD, s.KeepAlive); err != nil {
			lp.finish(p, core.ReasonError, core.SideA, fmt.Errorf("evloop: side a: %w", err))
			return
		}
	}
	if err := lp.addEnd(&p.a); err != nil {
		lp.finish(p, core.ReasonError, core.SideA, err)
		return
	}
	lp.dialNext(p, nil)
}

// setKeepAlive turns on TCP keep-alive: idle d, interval d, 3 probes.
func setKeepAlive(fd int, d time.Duration) error {
	secs := max(int(d/time.Second), 1)
	for _, o := range [...]struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return fmt.Errorf("set TCP keep-alive: %w", err)
		}
	}
	return nil
}

// LocalAddr returns the local address of a socket: one getsockname, read
// as accept4's peer is (unix.Getsockname costs a getsockopt more).
func LocalAddr(fd int) (netip.AddrPort, error) {
	var sa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return netip.AddrPort{}, fmt.Errorf("getsockname: %w", e)
	}
	return peerOf(&sa), nil
}

// ConnFromFD makes fd a Go conn; fd is closed (the conn has a duplicate).
func ConnFromFD(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "accepted")
	c, err := net.FileConn(f)
	f.Close()
	return c, err
}

// CloseFD closes an accepted socket nobody took (a refused connection)
// after dropping what it received (unread.Drop), so that its peer sees a
// FIN rather than a reset.
func CloseFD(fd int) error {
	unread.Drop(fd)
	return unix.Close(fd)
}
