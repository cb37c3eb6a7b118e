package pop3_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3"
)

// TestBackendTakesNoPasswordHere: a backend whose CAPA on a plain
// connection offers STLS and neither USER nor SASL PLAIN (Cyrus with its
// default allowplaintext: no, Dovecot with disable_plaintext_auth) takes
// passwords only after TLS. The route is wrong (pop3:// where
// pop3+starttls:// was needed), not the client's password: the login is
// unavailable (no failure counted against the client, the next backend
// tried), and USER and PASS are not sent in clear to a server that said
// it would refuse them. Before, they were, and the backend's "-ERR [AUTH]
// USER command only available under a layer" reached the client as a
// wrong password.
func TestBackendTakesNoPasswordHere(t *testing.T) {
	// Cyrus 3.6's CAPA with allowplaintext: no, on a plain link.
	refusing := startFake(t, fakeOpts{
		greeting:    "+OK cyrus.test Cyrus POP3 server ready",
		caps:        []string{"STLS", "EXPIRE NEVER", "LOGIN-DELAY 0", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"},
		loginAnswer: "-ERR [AUTH] USER command only available under a layer",
	})
	taking := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})

	reg := prometheus.NewRegistry()
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + refusing.addr}}),
		AllowPlaintextAuth: true,
		Metrics:            pop3.NewMetrics(reg),
	}})
	c := dial(t, "", p.addr)
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS pw"); l != "-ERR [SYS/TEMP] "+gateway.TextUnavailable {
		t.Errorf("login: %q", l)
	}
	if n := loginsCounted(t, reg, "unavailable"); n != 1 {
		t.Errorf("logins counted unavailable: %v, want 1", n)
	}
	if n := loginsCounted(t, reg, "failed"); n != 0 {
		t.Errorf("logins counted failed: %v, want 0", n)
	}
	if got := refusing.commands(0); len(got) != 1 || got[0] != "CAPA" {
		t.Errorf("the backend got %q, want CAPA only", got)
	}

	failover := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + refusing.addr, "pop3://" + taking.addr}}),
		AllowPlaintextAuth: true,
	}})
	c = dial(t, "", failover.addr)
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS pw"); l != "+OK Logged in." {
		t.Errorf("login with a second backend: %q", l)
	}
}
