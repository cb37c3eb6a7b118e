package pipe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/evloop"
)

// Engine.Listen: the event loops accept connections themselves and connect
// their upstream side without a goroutine, the way HAProxy and nginx run a
// TCP proxy. It is the fast path for a plain TCP forwarder.

// ErrUnsupported is returned by Engine.Listen where the event loops cannot
// accept: other systems than Linux, FlavourGoroutines, listeners other than
// *net.TCPListener.
var ErrUnsupported = errors.New("pipe: unsupported")

// Accepted is a connection an Engine's event loops accepted on a Listener.
// It is valid only during the Acceptor's Accept call.
type Accepted struct {
	Peer  netip.AddrPort // the client's address
	fd    int
	taken bool
}

// LocalAddr returns the address the client connected to (one getsockname).
func (a *Accepted) LocalAddr() (netip.AddrPort, error) {
	return evloop.LocalAddr(a.fd)
}

// Conn takes the connection out of the loops as a Go conn, for connections
// that need what only Go code does (a TLS handshake, a PROXY header): Accept
// must then return nil, and the conn is the caller's.
func (a *Accepted) Conn() (net.Conn, error) {
	if a.taken {
		return nil, errors.New("pipe: Accepted.Conn called twice")
	}
	a.taken = true
	c, err := evloop.ConnFromFD(a.fd)
	if err != nil {
		return nil, fmt.Errorf("pipe: accepted connection from %s: %w", a.Peer, err)
	}
	return c, nil
}

// Setup says how to pipe an accepted connection (side A) to an upstream
// (side B) that the loop connects to itself, without blocking.
//
//	type Setup struct {
//		// Next returns the upstream address of the next connect attempt;
//		// prev is why the attempt before failed (nil on the first call).
//		// Returning false ends the pipe: AfterClose gets ReasonError and
//		// FirstEnd SideB. It runs on the loop and must not block.
//		Next func(prev error) (netip.AddrPort, bool)
//		// DialTimeout bounds each connect attempt; 0: the kernel's own.
//		DialTimeout time.Duration
//		// Connected, if not nil, runs on the loop once a connect succeeded.
//		Connected func()
//		// KeepAlive > 0 turns on TCP keep-alive on both sockets: this idle
//		// time and interval, 3 probes.
//		KeepAlive time.Duration
//		// Prefix is written to B before anything read from A (a PROXY
//		// protocol header, say), again for each attempt until one
//		// connects. It is copied.
//		Prefix []byte
//		// Options for this pipe; nil: the Engine's.
//		Options *Options
//		// AfterClose is called exactly once, after both sides are closed,
//		// also when no connect succeeded.
//		AfterClose func(Result)
//		// InlineAfterClose runs AfterClose on the event loop itself rather
//		// than on a goroutine of its own: cheaper, but AfterClose must then
//		// be quick and must never block (no logging to a pipe that may
//		// fill up).
//		InlineAfterClose bool
//		// Value is the owner's, given back as Detached.Value should the
//		// pipe leave (Engine.DetachAll). It stays in this process.
//		Value any
//	}
type Setup = core.Setup

// Acceptor is what a Listener calls on the event loops.
type Acceptor struct {
	// Accept is called for each accepted connection, on an event loop: it
	// must not block. It returns how to pipe the connection, or nil to
	// refuse it (the Engine closes it, unless Accepted.Conn took it).
	Accept func(*Accepted) *Setup
	// Error, if not nil, is told about accept errors (such as EMFILE) that
	// make a loop pause accepting for retryIn. It runs on the loop.
	Error func(err error, retryIn time.Duration)
	// Tag names the Listener's pipes when they leave the process
	// (Detached.Tag, see Engine.DetachAll): the new process gives each to
	// the forward with the same tag, which adopts it with its own
	// AfterClose. Empty: the pipes leave untagged.
	Tag string
}

// Listener is a listening socket the Engine's event loops accept on.
type Listener struct {
	e    *Engine
	l    *evloop.Listener
	addr net.Addr
	once sync.Once
	err  error
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Close stops accepting and closes the socket; pipes already accepted go
// on. Once it returns, Accept is not called any more. It must not be called
// from Accept. Shutdown closes an Engine's listeners.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.err = l.l.Close()
		e := l.e
		e.mu.Lock()
		delete(e.listeners, l)
		e.loopsIdleLocked()
		e.mu.Unlock()
	})
	return l.err
}

// Listen makes the event loops accept connections on ln, a
// *net.TCPListener, and pipe each as acc.Accept says: with no goroutine per
// connection, no Go conn and no netpoller registration, a loop accepts,
// connects the upstream side (trying further addresses when a connect
// fails or times out) and moves the bytes. The loops keep a thread each
// while the Listener is open. ln itself is closed at once (its socket lives
// on in the Listener) and must not be used again; on error it is untouched.
//
// Linux only: elsewhere, with FlavourGoroutines and for other listeners
// Listen returns an error wrapping ErrUnsupported, and the caller accepts
// with Go as usual.
func (e *Engine) Listen(ln net.Listener, acc Acceptor) (*Listener, error) {
	if acc.Accept == nil {
		return nil, errors.New("pipe: Engine.Listen: Acceptor.Accept is nil")
	}
	if _, ok := ln.(*net.TCPListener); !ok || e.Flavour != FlavourAuto {
		return nil, fmt.Errorf("pipe: Engine.Listen on %T with flavour %s: %w", ln, e.Flavour, ErrUnsupported)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return nil, ErrShuttingDown
	}
	if e.group == nil {
		cfg := e.loopCfg
		cfg.Loops = e.Loops
		g, err := evloop.New(cfg)
		if err != nil {
			return nil, listenError(err)
		}
		e.group = g
	}
	pl := &Listener{e: e, addr: ln.Addr()}
	el, err := e.group.Listen(ln, evloop.Acceptor{
		Accept: func(a evloop.Accepted) *core.Setup { return e.acceptOnLoop(a, acc.Accept, acc.Tag) },
		Error:  acc.Error,
	})
	if err != nil {
		e.loopsIdleLocked()
		return nil, listenError(err)
	}
	pl.l = el
	if e.listeners == nil {
		e.listeners = map[*Listener]struct{}{}
	}
	e.listeners[pl] = struct{}{}
	return pl, nil
}

// listenError wraps an error of the loops for Listen's caller; the loops'
// ErrUnsupported is this package's too.
func listenError(err error) error {
	if errors.Is(err, evloop.ErrUnsupported) {
		err = fmt.Errorf("%w (%w)", ErrUnsupported, err)
	}
	return fmt.Errorf("pipe: Engine.Listen: %w", err)
}

// acceptOnLoop counts in a connection a loop accepted and asks accept
// about it (on the loop goroutine).
func (e *Engine) acceptOnLoop(a evloop.Accepted, accept func(*Accepted) *Setup, tag string) *Setup {
	e.mu.Lock()
	if e.closing { // Shutdown is closing the listeners
		e.mu.Unlock()
		evloop.CloseFD(a.FD)
		return nil
	}
	e.total.Add(1)
	e.open.Add(1)
	e.onLoops++
	e.mu.Unlock()
	pa := &Accepted{Peer: a.Peer, fd: a.FD}
	s := accept(pa)
	if s == nil {
		if !pa.taken {
			evloop.CloseFD(a.FD)
		}
		e.total.Add(-1)
		e.leaveLoop(nil)
		return nil
	}
	ls := *s // the loop's copy: the Engine's Options, and counted out after AfterClose
	if ls.Options == nil {
		opts := e.Options
		ls.Options = &opts
	}
	d := newLoopDone(e, s.AfterClose)
	d.h.pair, d.h.tag, d.h.value = a.Pair, tag, s.Value // not shared yet
	e.mu.Lock()
	e.onLoops-- // counted again with the pipe itself
	e.onLoopLocked(d)
	e.mu.Unlock()
	ls.AfterClose = d.run
	return &ls
}

// closeListeners closes the Engine's listeners (Shutdown, e.mu not held).
func (e *Engine) closeListeners() {
	e.mu.Lock()
	ls := make([]*Listener, 0, len(e.listeners))
	for l := range e.listeners {
		ls = append(ls, l)
	}
	e.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}
