package main

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/sieve"
	"github.com/pipegate/pipegate/submission"
)

// mailServer is what the daemon does with a protocol's server (each
// protocol package's Server, over its embedded gateway.Server).
type mailServer interface {
	Serve(l net.Listener, implicitTLS bool) error
	Shutdown(ctx context.Context) error
	SetTLSConfig(client, backend *tls.Config)
}

// mailProtocol is one protocol of `pipegate mail`: a listener's
// `protocol:` names it. Adding a protocol is one entry in mailProtocols.
type mailProtocol struct {
	// newServer makes a server with the protocol's own options from s;
	// the daemon fills the shared fields through the *gateway.Server it
	// returns (the one embedded in the server) before serving.
	newServer func(s *mailSettings) (mailServer, *gateway.Server)
	// newMetrics makes the protocol's metrics (pipegate_<protocol>_*),
	// shared by its listeners.
	newMetrics func(reg prometheus.Registerer) *gateway.Metrics
}

// mailProtocols are the protocols a listener may name, by name.
var mailProtocols = map[string]mailProtocol{
	"imap": {
		newServer: func(s *mailSettings) (mailServer, *gateway.Server) {
			srv := &imap.Server{IMAP4rev2: s.IMAP4rev2, Greeting: s.Greeting}
			return srv, &srv.Server
		},
		newMetrics: imap.NewMetrics,
	},
	"pop3": {
		newServer: func(s *mailSettings) (mailServer, *gateway.Server) {
			srv := &pop3.Server{Greeting: s.POP3.Greeting, Capabilities: s.POP3.Capabilities}
			return srv, &srv.Server
		},
		newMetrics: pop3.NewMetrics,
	},
	"sieve": {
		newServer: func(s *mailSettings) (mailServer, *gateway.Server) {
			srv := &sieve.Server{Greeting: s.Sieve.Greeting, Implementation: s.Sieve.Implementation}
			return srv, &srv.Server
		},
		newMetrics: sieve.NewMetrics,
	},
	"submission": {
		newServer: func(s *mailSettings) (mailServer, *gateway.Server) {
			srv := &submission.Server{Greeting: s.Submission.Greeting, Extensions: s.Submission.Extensions}
			return srv, &srv.Server
		},
		newMetrics: submission.NewMetrics,
	},
}

// protocolNames lists the known protocols, for messages.
func protocolNames() string {
	names := make([]string, 0, len(mailProtocols))
	for n := range mailProtocols {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
