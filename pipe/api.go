package pipe

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/pipegate/pipegate/pipe/internal/core"
)

// The types below are defined once in pipe/internal/core, which the event
// loops use too; here they are aliases, so a pipe.Result is the loops'
// Result and needs no conversion. Their docs are repeated here in full
// because godoc shows an alias with its own comment only.

// Side names one of the two connections of a pipe: SideA is the conn given
// first (the client, for a proxy), SideB the other. Its String is "a", "b"
// or "none".
type Side = core.Side

const (
	SideNone Side = core.SideNone // no side ended first (idle timeout, lifetime, shutdown)
	SideA    Side = core.SideA
	SideB    Side = core.SideB
)

// Reason says why a pipe ended. Its String is a short label: "eof",
// "reset", "idle-timeout", "lifetime", "half-close-linger", "shutdown",
// "error" or "stopped".
type Reason = core.Reason

const (
	ReasonEOF         Reason = core.ReasonEOF         // both directions ended with EOF
	ReasonReset       Reason = core.ReasonReset       // a peer reset its connection
	ReasonIdleTimeout Reason = core.ReasonIdleTimeout // no bytes either way for Options.IdleTimeout
	ReasonLifetime    Reason = core.ReasonLifetime    // Options.MaxLifetime passed
	ReasonLinger      Reason = core.ReasonLinger      // half-closed and the other side stayed silent for Options.HalfCloseLinger
	ReasonShutdown    Reason = core.ReasonShutdown    // the context was cancelled or the Engine shut down
	ReasonError       Reason = core.ReasonError       // any other read or write error
	ReasonStopped     Reason = core.ReasonStopped     // the owner called Handle.Stop
)

// DefaultHalfCloseLinger is how long a half-closed pipe waits for the other
// side when Options.HalfCloseLinger is zero.
const DefaultHalfCloseLinger = core.DefaultHalfCloseLinger

// Options tune a pipe. The zero value is useful: no idle timeout, no
// lifetime limit, DefaultHalfCloseLinger.
//
//	type Options struct {
//		IdleTimeout     time.Duration // 0: none
//		MaxLifetime     time.Duration // 0: none
//		HalfCloseLinger time.Duration // 0: DefaultHalfCloseLinger; <0: wait forever
//	}
type Options = core.Options

// Result tells the caller how a pipe went.
//
//	type Result struct {
//		BytesAToB int64     // bytes written to B that were read from A (peeked bytes included)
//		BytesBToA int64     // bytes written to A that were read from B, and a Stop's farewell
//		Start     time.Time
//		End       time.Time // after both conns were closed
//		FirstEnd  Side      // which side ended first
//		Reason    Reason
//		Err       error     // the first error other than EOF, if any
//	}
//
// FirstEnd is the side whose direction ended first (EOF or error); it stays
// SideNone when the pipe was ended by a timer, a shutdown or a Stop before
// either side ended. Reason is what ended the pipe: ReasonEOF only when
// both directions ended with EOF. Errors after a Handle.Stop are not
// reported (Reason stays ReasonStopped). Its method Duration returns
// End - Start.
type Result = core.Result

// ErrShuttingDown is returned by Engine.Enter once Shutdown has begun.
var ErrShuttingDown = errors.New("pipe: engine is shutting down")

// ErrNilConn: a conn given to Join, Go, Start or Engine.Enter is nil (or a
// PrefixConn around none). Join, Go and Start then close the other conn
// and report it as the Result's Err (ReasonError), afterClose called once
// as always; Engine.Enter and Engine.Start return it, and, as with
// ErrShuttingDown, the conns stay the caller's and afterClose is not
// called.
var ErrNilConn = errors.New("pipe: nil conn")

// Compile-time reminders of the public API (implemented in other files):
var (
	_ func(context.Context, net.Conn, net.Conn, *Options) Result = Join
	_ func(net.Conn, net.Conn, *Options, func(Result))           = Go
	_ func(net.Conn, net.Conn, *Options, func(Result)) *Handle   = Start
	_ func(*Handle, []byte)                                      = (*Handle).Stop
	_ func(*Handle) <-chan struct{}                              = (*Handle).Done
	_ func(Result) time.Duration                                 = Result.Duration

	_ func(*Handle, context.Context) (*Detached, error)                  = (*Handle).Detach
	_ func(*Handle, string)                                              = (*Handle).SetTag
	_ func(*Detached)                                                    = (*Detached).Wipe
	_ func(*Engine, context.Context, func(*Detached) error) (int, error) = (*Engine).DetachAll
	_ func(*Engine, *Detached, func(Result)) (*Handle, error)            = (*Engine).Adopt
	_ func(*Engine) []*Handle                                            = (*Engine).Handles
)
