package core

// Fallback is why a pipe that could have gone to the event loops
// (FlavourAuto) runs on goroutines instead. Its String is a short,
// stable label value, fit for a metric.
type Fallback int

const (
	// FallbackSystem: no event loops on this operating system (not Linux).
	FallbackSystem Fallback = iota
	// FallbackConnType: a side is neither a TCP or Unix stream socket nor
	// a *tls.Conn over one (under any *PrefixConn).
	FallbackConnType
	// FallbackLoopError: the loops could not be made or could not take
	// the sockets (out of descriptors, say).
	FallbackLoopError
	// FallbackTLSOnGoroutines: a side is a *tls.Conn and the Engine was
	// told to keep TLS on goroutines.
	FallbackTLSOnGoroutines
	// FallbackTLSGoRelease: the loops' TLS record layer does not support
	// the crypto/tls of the Go release the binary was built with.
	FallbackTLSGoRelease
	// FallbackTLSVersion: a side runs TLS 1.2 or older (only TLS 1.3 goes
	// to the loops).
	FallbackTLSVersion
	// FallbackTLSSuite: a side runs a TLS 1.3 cipher suite the record
	// layer does not know.
	FallbackTLSSuite
	// FallbackTLSBuffered: bytes are buffered in or under crypto/tls
	// (received but not read yet, records not sent yet, handshake bytes
	// under a *tls.Conn that it has not read).
	FallbackTLSBuffered
	// FallbackTLSState: a *tls.Conn whose handshake is not done, that has
	// failed or that has sent close_notify.
	FallbackTLSState

	NumFallbacks // the number of Fallback values; not a reason
)

func (f Fallback) String() string {
	switch f {
	case FallbackSystem:
		return "system"
	case FallbackConnType:
		return "conn-type"
	case FallbackLoopError:
		return "loop-error"
	case FallbackTLSOnGoroutines:
		return "tls-on-goroutines"
	case FallbackTLSGoRelease:
		return "tls-go-release"
	case FallbackTLSVersion:
		return "tls-version"
	case FallbackTLSSuite:
		return "tls-suite"
	case FallbackTLSBuffered:
		return "tls-buffered"
	case FallbackTLSState:
		return "tls-state"
	}
	return "unknown"
}
