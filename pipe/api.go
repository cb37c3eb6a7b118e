package pipe

import (
	"context"
	"errors"
	"net"
	"time"
)

// Side names one of the two connections of a pipe.
type Side int

const (
	SideNone Side = iota // no side ended first (e.g. lifetime, shutdown)
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

// Reason says why a pipe ended.
type Reason int

const (
	ReasonEOF         Reason = iota // both directions ended with EOF
	ReasonReset                     // a peer reset its connection
	ReasonIdleTimeout               // no bytes either way for Options.IdleTimeout
	ReasonLifetime                  // Options.MaxLifetime passed
	ReasonLinger                    // half-closed and the other side stayed silent for Options.HalfCloseLinger
	ReasonShutdown                  // the context was cancelled or the Engine shut down
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

// DefaultHalfCloseLinger is how long a half-closed pipe waits for the other
// side when Options.HalfCloseLinger is zero.
const DefaultHalfCloseLinger = 60 * time.Second

// Options tune a pipe. The zero value is useful: no idle timeout, no
// lifetime limit, DefaultHalfCloseLinger.
type Options struct {
	IdleTimeout     time.Duration // 0: none
	MaxLifetime     time.Duration // 0: none
	HalfCloseLinger time.Duration // 0: DefaultHalfCloseLinger; <0: wait forever
}

// Result tells the caller how a pipe went.
type Result struct {
	BytesAToB int64 // bytes written to B that were read from A (peeked bytes included)
	BytesBToA int64
	Start     time.Time
	End       time.Time // after both conns were closed
	FirstEnd  Side      // which side ended first
	Reason    Reason
	Err       error // the first error other than EOF, if any
}

// Duration is End - Start.
func (r Result) Duration() time.Duration { return r.End.Sub(r.Start) }

// ErrShuttingDown is returned by Engine.Enter once Shutdown has begun.
var ErrShuttingDown = errors.New("pipe: engine is shutting down")

// Compile-time reminders of the public API (implemented in other files):
var (
	_ func(context.Context, net.Conn, net.Conn, *Options) Result = Join
	_ func(net.Conn, net.Conn, *Options, func(Result))           = Go
)
