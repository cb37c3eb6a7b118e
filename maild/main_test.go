package maild

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/sieve"
	"github.com/pipegate/pipegate/submission"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testProtocols is cmd/pipegate's table: the four protocols, whose
// packages register their backend schemes (pop3://, sieve://, ...).
var testProtocols = Protocols{
	"imap": {
		NewServer: func(s *Settings) (Server, *gateway.Server) {
			srv := &imap.Server{IMAP4rev2: s.IMAP4rev2, Greeting: s.Greeting}
			return srv, &srv.Server
		},
		NewMetrics: imap.NewMetrics,
	},
	"pop3": {
		NewServer: func(s *Settings) (Server, *gateway.Server) {
			srv := &pop3.Server{Greeting: s.POP3.Greeting, Capabilities: s.POP3.Capabilities}
			return srv, &srv.Server
		},
		NewMetrics: pop3.NewMetrics,
	},
	"sieve": {
		NewServer: func(s *Settings) (Server, *gateway.Server) {
			srv := &sieve.Server{Greeting: s.Sieve.Greeting, Implementation: s.Sieve.Implementation}
			return srv, &srv.Server
		},
		NewMetrics: sieve.NewMetrics,
	},
	"submission": {
		NewServer: func(s *Settings) (Server, *gateway.Server) {
			srv := &submission.Server{Greeting: s.Submission.Greeting, Extensions: s.Submission.Extensions}
			return srv, &srv.Server
		},
		NewMetrics: submission.NewMetrics,
	},
}
