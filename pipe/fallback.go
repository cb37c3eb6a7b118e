package pipe

import "github.com/pipegate/pipegate/pipe/internal/core"

// Fallback is why a pipe entered into an Engine with FlavourAuto runs on
// goroutines rather than on the event loops. Engine.Stats counts them by
// reason (Stats.Fallbacks), so that a change of conns, config or Go
// toolchain that sends pipes off the loops shows as a number. Its String
// is a short, stable label value: "system", "conn-type", "loop-error",
// "tls-on-goroutines", "tls-go-release", "tls-version", "tls-suite",
// "tls-buffered" or "tls-state". AllFallbacks lists them all.
//
// Pipes of FlavourGoroutines, Join and Go never count: they run on
// goroutines by choice.
type Fallback = core.Fallback

const (
	// FallbackSystem: no event loops on this system (not Linux).
	FallbackSystem Fallback = core.FallbackSystem
	// FallbackConnType: a side is neither a *net.TCPConn or a
	// *net.UnixConn of type SOCK_STREAM nor a *tls.Conn over one (under
	// any *PrefixConn).
	FallbackConnType Fallback = core.FallbackConnType
	// FallbackLoopError: the loops could not be made or could not take the
	// sockets (out of descriptors, say).
	FallbackLoopError Fallback = core.FallbackLoopError
	// FallbackTLSOnGoroutines: a side is a *tls.Conn and
	// Engine.TLSOnGoroutines is set.
	FallbackTLSOnGoroutines Fallback = core.FallbackTLSOnGoroutines
	// FallbackTLSGoRelease: the loops' TLS record layer does not read the
	// crypto/tls of the Go release this binary was built with (it is tied
	// to the releases it was tested on), so every TLS pair counts here.
	FallbackTLSGoRelease Fallback = core.FallbackTLSGoRelease
	// FallbackTLSVersion: a side runs TLS 1.2 or older; only TLS 1.3 goes
	// to the loops.
	FallbackTLSVersion Fallback = core.FallbackTLSVersion
	// FallbackTLSSuite: a side runs a TLS 1.3 cipher suite the loops do not
	// know.
	FallbackTLSSuite Fallback = core.FallbackTLSSuite
	// FallbackTLSBuffered: bytes are buffered in or under a *tls.Conn:
	// plaintext received but not read, records not sent yet, or bytes of a
	// *PrefixConn under it that the handshake has not read.
	FallbackTLSBuffered Fallback = core.FallbackTLSBuffered
	// FallbackTLSState: a *tls.Conn whose handshake is not done, that has
	// failed or that has sent close_notify.
	FallbackTLSState Fallback = core.FallbackTLSState
)

// AllFallbacks returns every Fallback, in a fixed order: the label values
// of a counter that should show zeros too.
//
//	s := eng.Stats()
//	for _, f := range pipe.AllFallbacks() {
//		report(f.String(), s.Fallbacks[f])
//	}
func AllFallbacks() []Fallback {
	all := make([]Fallback, core.NumFallbacks)
	for i := range all {
		all[i] = Fallback(i)
	}
	return all
}
