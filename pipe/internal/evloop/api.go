package evloop

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Side names one of the two endpoints of a pair; the values match pipe.Side.
type Side int

const (
	SideNone Side = iota // no side ended first (idle, lifetime, shutdown)
	SideA
	SideB
)

func (s Side) String() string {
	switch s {
	case SideA:
		return "a"
	case SideB:
		return "b"
	}
	return "none"
}

// Reason says why a pair ended; the values match pipe.Reason one to one.
type Reason int

const (
	ReasonEOF         Reason = iota // both directions ended with EOF
	ReasonReset                     // a peer reset its connection (ECONNRESET, EPIPE)
	ReasonIdleTimeout               // no bytes either way for Options.IdleTimeout
	ReasonLifetime                  // Options.MaxLifetime passed
	ReasonLinger                    // half-closed, and the open direction was silent for HalfCloseLinger
	ReasonShutdown                  // Group.Shutdown's context ended, or Group.Close
	ReasonError                     // any other read or write error
)

func (r Reason) String() string {
	switch r {
	case ReasonEOF:
		return "eof"
	case ReasonReset:
		return "reset"
	case ReasonIdleTimeout:
		return "idle-timeout"
	case ReasonLifetime:
		return "lifetime"
	case ReasonLinger:
		return "half-close-linger"
	case ReasonShutdown:
		return "shutdown"
	case ReasonError:
		return "error"
	}
	return "unknown"
}

// DefaultHalfCloseLinger is used when Options.HalfCloseLinger is zero.
const DefaultHalfCloseLinger = 60 * time.Second

// Options tune one pair; the zero value means no idle timeout, no lifetime
// limit and DefaultHalfCloseLinger. Same fields as pipe.Options.
type Options struct {
	IdleTimeout     time.Duration // 0: none
	MaxLifetime     time.Duration // 0: none
	HalfCloseLinger time.Duration // 0: DefaultHalfCloseLinger; <0: wait forever
}

// Stats tell the done callback how a pair went; same fields as pipe.Result.
//
// FirstEnd is the side whose direction ended first (EOF or error); it stays
// SideNone when the pair was ended by a timer or Shutdown before either side
// ended. Reason is what ended the pair: ReasonEOF only when both directions
// ended with EOF. Err is the first error other than EOF.
type Stats struct {
	BytesAToB int64 // bytes written to B that were read from A
	BytesBToA int64
	Start     time.Time // when Add accepted the pair
	End       time.Time // after both descriptors were closed
	FirstEnd  Side
	Reason    Reason
	Err       error
}

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
	FD   int            // the socket: non-blocking, close-on-exec, TCP_NODELAY
	Peer netip.AddrPort // the client's address (IPv4-mapped addresses unmapped)
}

// Setup says how a loop pipes a connection it accepted (side A) to an
// upstream (side B) that the loop connects to itself.
type Setup struct {
	// Next returns the address for the next connect attempt; prev is the
	// error of the attempt before (nil on the first call). false ends the
	// pair (ReasonError, SideB) with prev as its error. Called on the loop.
	Next func(prev error) (netip.AddrPort, bool)
	// DialTimeout bounds each attempt; 0: only the kernel's own timeout.
	DialTimeout time.Duration
	// Connected, if not nil, is called on the loop once a connect succeeded.
	Connected func()
	// KeepAlive, when > 0, turns TCP keep-alive on for both sockets with this
	// idle time and interval (3 probes).
	KeepAlive time.Duration
	// Prefix is written to B before anything read from A, again on every
	// attempt until one connects (a PROXY protocol header, say). Copied.
	Prefix  []byte
	Options Options
	Done    func(Stats) // called once, as for Add, also when no connect succeeded
	// InlineDone calls Done on the loop goroutine, which saves starting a
	// goroutine per pair: Done must then be quick and never block.
	InlineDone bool
}

// Acceptor is what a Listener calls on its loops.
type Acceptor struct {
	// Accept decides about one accepted connection: a Setup to pipe it, or
	// nil when it took the descriptor itself (closed it, or made it a Go
	// conn). It runs on a loop goroutine and must not block.
	Accept func(Accepted) *Setup
	// Error, if not nil, is told about accept errors the listener pauses
	// for (such as EMFILE), with how long it pauses on that loop.
	Error func(err error, retryIn time.Duration)
}
