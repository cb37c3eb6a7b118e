package core

// Side names one of the two connections of a pipe: A is the one given
// first (the client, for a proxy), B the other.
type Side int

const (
	SideNone Side = iota // no side ended first (idle timeout, lifetime, shutdown)
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
	ReasonReset                     // a peer reset its connection (ECONNRESET, EPIPE)
	ReasonIdleTimeout               // no bytes either way for Options.IdleTimeout
	ReasonLifetime                  // Options.MaxLifetime passed
	ReasonLinger                    // half-closed, and the other side stayed silent for Options.HalfCloseLinger
	ReasonShutdown                  // the context was cancelled, or the Engine (or loop group) shut down
	ReasonError                     // any other read or write error
	ReasonStopped                   // the pipe's owner stopped it (pipe.Handle.Stop)
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
	case ReasonStopped:
		return "stopped"
	}
	return "unknown"
}
