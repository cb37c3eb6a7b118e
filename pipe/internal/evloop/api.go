package evloop

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// Config sets up a Group; the zero value is useful.
type Config struct {
	Loops        int  // number of epoll loops; 0: runtime.GOMAXPROCS(0)
	NoSplice     bool // move bytes through pooled buffers instead of kernel pipes
	PipeSize     int  // kernel pipe capacity (F_SETPIPE_SZ); 0: 256 KiB; best effort
	MaxIdlePipes int  // kernel pipes (2 fds each) kept per loop for reuse; 0: 16
}

var (
	// ErrShuttingDown is returned by Add once Shutdown or Close has begun.
	ErrShuttingDown = errors.New("evloop: group is shutting down")
	// ErrUnsupported is returned on systems without the event loop, and by
	// FromConn for conns that are not plain stream sockets.
	ErrUnsupported = errors.New("evloop: unsupported")
)

// Conn is one side for TakeConns: a plain stream socket, or a TLS
// connection running over one.
type Conn struct {
	// Sock is a *net.TCPConn or *net.UnixConn (SOCK_STREAM).
	Sock net.Conn
	// TLS, when not nil, is the connection over Sock: its handshake is done,
	// with TLS 1.3, and nothing is buffered in it (see tlsrec.Export). Any
	// layer between TLS and Sock must hold no bytes of its own.
	TLS *tls.Conn
}

// Accepted is a connection a Listener took; the Acceptor's Accept func
// gets it on the loop goroutine.
type Accepted struct {
	FD   int            // the socket: non-blocking, close-on-exec, TCP_NODELAY (and SO_OOBINLINE, from a listener that takes it)
	Peer netip.AddrPort // the client's address (IPv4-mapped addresses unmapped)
	// Pair is the reference of the pair made of the connection when
	// Accept returns a Setup (to stop or detach it later); unused otherwise.
	Pair Pair
}

// Acceptor is what a Listener calls on its loops.
type Acceptor struct {
	// Accept decides about one accepted connection: a Setup to pipe it
	// (Setup.Options nil: the zero Options), or nil when it took the
	// descriptor itself (closed it, or made it a Go conn). It runs on a
	// loop goroutine and must not block.
	Accept func(Accepted) *core.Setup
	// Error, if not nil, is told about accept errors the listener pauses
	// for (such as EMFILE), with how long it pauses on that loop.
	Error func(err error, retryIn time.Duration)
}
