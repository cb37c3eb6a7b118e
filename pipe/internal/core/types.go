package core

import (
	"net/netip"
	"time"
)

// DefaultHalfCloseLinger is how long a half-closed pipe waits for the other
// side when Options.HalfCloseLinger is zero.
const DefaultHalfCloseLinger = 60 * time.Second

// FlushTimeout bounds how long bytes already read from one side may take to
// reach the other once a pipe is ending (after an error, or when its owner
// stops it: the owner's farewell included) before both are closed.
const FlushTimeout = 5 * time.Second

// Options tune a pipe. The zero value is useful: no idle timeout, no
// lifetime limit, DefaultHalfCloseLinger.
type Options struct {
	IdleTimeout     time.Duration // 0: none
	MaxLifetime     time.Duration // 0: none
	HalfCloseLinger time.Duration // 0: DefaultHalfCloseLinger; <0: wait forever
}

// Result tells how a pipe went.
//
// FirstEnd is the side whose direction ended first (EOF or error); it stays
// SideNone when the pipe was ended by a timer, a shutdown or a Stop before
// either side ended. Reason is what ended the pipe: ReasonEOF only when both
// directions ended with EOF. Err is the first error other than EOF; errors
// after the owner stopped the pipe (ReasonStopped) are not reported.
type Result struct {
	BytesAToB int64 // bytes written to B that were read from A (peeked bytes included)
	BytesBToA int64 // bytes written to A that were read from B, and a Stop's farewell
	Start     time.Time
	End       time.Time // after both conns were closed
	FirstEnd  Side      // which side ended first
	Reason    Reason
	Err       error // the first error other than EOF, if any
}

// Duration is End - Start.
func (r Result) Duration() time.Duration { return r.End.Sub(r.Start) }

// Setup says how to pipe an accepted connection (side A) to an upstream
// (side B) that an event loop connects to itself, without blocking.
type Setup struct {
	// Next returns the upstream address of the next connect attempt; prev
	// is why the attempt before failed (nil on the first call). Returning
	// false ends the pipe: AfterClose gets ReasonError and FirstEnd SideB.
	// It runs on the loop and must not block.
	Next func(prev error) (netip.AddrPort, bool)
	// DialTimeout bounds each connect attempt; 0: the kernel's own.
	DialTimeout time.Duration
	// Connected, if not nil, runs on the loop once a connect succeeded.
	Connected func()
	// KeepAlive > 0 turns on TCP keep-alive on both sockets: this idle time
	// and interval, 3 probes.
	KeepAlive time.Duration
	// Prefix is written to B before anything read from A (a PROXY
	// protocol header, say), again for each attempt until one connects.
	// It is copied.
	Prefix []byte
	// Options for this pipe; nil: the Engine's (the zero Options for a
	// loop group used directly).
	Options *Options
	// AfterClose is called exactly once, after both sides are closed, also
	// when no connect succeeded.
	AfterClose func(Result)
	// InlineAfterClose runs AfterClose on the event loop itself rather
	// than on a goroutine of its own: cheaper, but AfterClose must then be
	// quick and must never block (no logging to a pipe that may fill up).
	InlineAfterClose bool
	// Value is the owner's, given back as Detached.Value should the pipe
	// leave (Engine.DetachAll): what the owner knows of the pipe, found
	// again without a lookup. It stays in this process.
	Value any
}
