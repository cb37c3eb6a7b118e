package main

import (
	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/maild"
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/sieve"
	"github.com/pipegate/pipegate/submission"
)

// mailProtocols are the protocols a listener of `pipegate mail` may name
// in its `protocol:`. Adding a protocol is one entry here.
var mailProtocols = maild.Protocols{
	"imap": {
		NewServer: func(s *maild.Settings) (maild.Server, *gateway.Server) {
			srv := &imap.Server{IMAP4rev2: s.IMAP4rev2, Greeting: s.Greeting, TrustedNetworks: s.LoginTrustedNetworks}
			return srv, &srv.Server
		},
		NewMetrics: imap.NewMetrics,
	},
	"pop3": {
		NewServer: func(s *maild.Settings) (maild.Server, *gateway.Server) {
			srv := &pop3.Server{Greeting: s.POP3.Greeting, Capabilities: s.POP3.Capabilities, TrustedNetworks: s.LoginTrustedNetworks}
			return srv, &srv.Server
		},
		NewMetrics: pop3.NewMetrics,
	},
	"sieve": {
		NewServer: func(s *maild.Settings) (maild.Server, *gateway.Server) {
			srv := &sieve.Server{Greeting: s.Sieve.Greeting, Implementation: s.Sieve.Implementation, TrustedNetworks: s.LoginTrustedNetworks}
			return srv, &srv.Server
		},
		NewMetrics: sieve.NewMetrics,
	},
	"submission": {
		NewServer: func(s *maild.Settings) (maild.Server, *gateway.Server) {
			srv := &submission.Server{Greeting: s.Submission.Greeting, Extensions: s.Submission.Extensions, TrustedNetworks: s.LoginTrustedNetworks}
			return srv, &srv.Server
		},
		NewMetrics: submission.NewMetrics,
	},
}
