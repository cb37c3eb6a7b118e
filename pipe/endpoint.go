package pipe

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/sock"
)

var errNoCloseWrite = errors.New("connection cannot close its write side")

// aLongTimeAgo is a read deadline that makes pending and future reads
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// noDeadline clears a deadline.
var noDeadline time.Time

// endpoint is one side of a pipe, unwrapped for the fastest path.
type endpoint struct {
	conn   net.Conn // what reads and writes go through (a *PrefixConn unwrapped)
	prefix []byte   // bytes to write to the other side before reading conn

	// raw is the RawConn of the TCP or Unix stream socket under conn
	// (conn itself, or under a *tls.Conn), nil when there is none.
	raw syscall.RawConn
	tls *tls.Conn // conn as a *tls.Conn, else nil

	mu       sync.Mutex // orders read-deadline changes against interrupt
	stopping bool

	oobInline bool // SO_OOBINLINE is set on raw (inlineUrgent); only the direction reading e touches it
}

// init unwraps c: prefixes are collected, TLS and socket layers found.
func (e *endpoint) init(c net.Conn) {
	for {
		pc, ok := c.(*PrefixConn)
		if !ok {
			break
		}
		if len(pc.Prefix) > 0 {
			e.prefix = append(e.prefix, pc.Prefix...)
		}
		c = pc.Conn
	}
	e.conn = c
	if t, ok := c.(*tls.Conn); ok {
		e.tls = t
	}
	if !sock.Supported {
		return
	}
	if s := e.socket(); s != nil {
		if raw, err := s.SyscallConn(); err == nil {
			e.raw = raw
		}
	}
}

// socket returns the TCP or Unix stream socket under the endpoint (conn
// itself or the transport of a *tls.Conn), nil when there is none.
func (e *endpoint) socket() interface {
	syscall.Conn
	CloseWrite() error
} {
	c := e.conn
	if e.tls != nil {
		c = e.tls.NetConn()
		// A handshake that began over a *PrefixConn has used up its prefix:
		// the socket under it can then be waited on directly.
		for {
			pc, ok := c.(*PrefixConn)
			if !ok || len(pc.Prefix) > 0 {
				break
			}
			c = pc.Conn
		}
	}
	switch s := c.(type) {
	case *net.TCPConn:
		return s
	case *net.UnixConn:
		if la := s.LocalAddr(); la != nil && la.Network() == "unix" {
			return s // not datagram or seqpacket: those keep message boundaries
		}
	}
	return nil
}

// plainSocket reports whether bytes can be spliced to or from the endpoint.
func (e *endpoint) plainSocket() bool { return e.raw != nil && e.tls == nil }

// errStopping reports that the endpoint's reads are being interrupted.
var errStopping = errors.New("pipe is stopping")

// setReadDeadline changes the read deadline unless the endpoint is being
// interrupted (errStopping); other errors come from the conn, which may not
// support deadlines.
func (e *endpoint) setReadDeadline(t time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return errStopping
	}
	return e.conn.SetReadDeadline(t)
}

// interruptReads makes the endpoint's pending and future reads return at
// once; a conn without deadlines is closed instead.
func (e *endpoint) interruptReads() {
	e.mu.Lock()
	e.stopping = true
	err := e.conn.SetReadDeadline(aLongTimeAgo)
	e.mu.Unlock()
	if err != nil {
		e.forceClose()
	}
}

// forceClose closes the transport under the endpoint so that every blocked
// call returns at once.
func (e *endpoint) forceClose() {
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
	if e.tls != nil {
		// The transport under TLS: no close_notify write can stall here.
		_ = e.tls.NetConn().Close()
		return
	}
	_ = e.conn.Close()
}

// closeWrite sends end of stream: TLS close_notify and then a FIN on the
// socket under it, a FIN on a socket, or the conn's own CloseWrite.
func (e *endpoint) closeWrite() error {
	s := e.socket()
	if e.tls != nil {
		err := e.tls.CloseWrite()
		if s != nil {
			err = errors.Join(err, s.CloseWrite())
		}
		return err
	}
	if s != nil {
		return s.CloseWrite()
	}
	if cw, ok := e.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoCloseWrite
}

// addr names the peer for error messages.
func (e *endpoint) addr() string {
	if ra := e.conn.RemoteAddr(); ra != nil {
		return ra.String()
	}
	return "?"
}
