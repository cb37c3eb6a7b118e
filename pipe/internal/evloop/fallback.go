package evloop

import (
	"errors"
	"fmt"

	"github.com/pipegate/pipegate/pipe/internal/core"
	"github.com/pipegate/pipegate/pipe/internal/tlsrec"
)

// errConnType is wrapped by TakeConns's errors for a side that is not a
// stream socket the loops can own.
var errConnType = fmt.Errorf("not a stream socket: %w", ErrUnsupported)

// FallbackOf says why the loops did not take a pair, given the error of
// New or TakeConns: the reason the pair runs on goroutines instead.
func FallbackOf(err error) core.Fallback {
	switch {
	case errors.Is(err, tlsrec.ErrGoRelease):
		return core.FallbackTLSGoRelease
	case errors.Is(err, tlsrec.ErrVersion):
		return core.FallbackTLSVersion
	case errors.Is(err, tlsrec.ErrSuite):
		return core.FallbackTLSSuite
	case errors.Is(err, tlsrec.ErrBuffered):
		return core.FallbackTLSBuffered
	case errors.Is(err, tlsrec.ErrState):
		return core.FallbackTLSState
	case errors.Is(err, errConnType):
		return core.FallbackConnType
	case !Supported && errors.Is(err, ErrUnsupported):
		return core.FallbackSystem
	}
	return core.FallbackLoopError
}
