package maild

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
)

// Server is what the daemon does with a protocol's server (each protocol
// package's Server, over its embedded gateway.Server).
type Server interface {
	Serve(l net.Listener, implicitTLS bool) error
	Shutdown(ctx context.Context) error
	SetTLSConfig(client, backend *tls.Config)
	// Probe checks a backend for a pool's health checks
	// (gateway.Server.Probe).
	Probe(ctx context.Context, b route.Backend, user, password string) error
}

// Protocol is one protocol of the daemon: a listener's `protocol:` names
// it. cmd/pipegate's table lists them; adding a protocol is one entry
// there (and its own block in Settings when it has options).
type Protocol struct {
	// NewServer makes a server with the protocol's own options from s;
	// the daemon fills the shared fields through the *gateway.Server it
	// returns (the one embedded in the server) before serving.
	NewServer func(s *Settings) (Server, *gateway.Server)
	// NewMetrics makes the protocol's metrics (pipegate_<protocol>_*),
	// shared by its listeners.
	NewMetrics func(reg prometheus.Registerer) *gateway.Metrics
}

// Protocols are the protocols a listener may name, by name ("imap",
// "pop3"). A listener without protocol: is "imap".
type Protocols map[string]Protocol

// names lists the known protocols, for messages.
func (p Protocols) names() string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
