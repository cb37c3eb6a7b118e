package sieve_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/sieve"
)

// TestNoFDLeak: after many sessions of every kind (logins that pipe,
// failed logins, clients that vanish before or during a login, STARTTLS)
// the process holds the descriptors it held before, once the gateway
// counts no session left.
func TestNoFDLeak(t *testing.T) {
	pki := newPKI(t)
	reg := prometheus.NewRegistry()
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) {
		s.TLSConfig = pki.server
		s.Metrics = sieve.NewMetrics(reg)
	})
	kinds := []func(*testing.T){
		func(t *testing.T) { // logged in and piped
			c, _ := dial(t, "", addr)
			c.send(authPlain + "NOOP\r\nLOGOUT\r\n")
			c.response("OK")
			c.response("OK")
			c.response("OK")
		},
		func(t *testing.T) { // refused
			c, _ := dial(t, "", addr)
			c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00wrong") + "\"\r\nLOGOUT\r\n")
			c.response("NO")
			c.response("OK")
		},
		func(t *testing.T) { // vanished after a command
			c, _ := dial(t, "", addr)
			c.send("NOOP\r\n")
			c.response("OK")
			c.c.Close()
		},
		func(t *testing.T) { // vanished in the middle of AUTHENTICATE
			c, _ := dial(t, "", addr)
			c.send("AUTHENTICATE \"PLAIN\"\r\n")
			c.line()
			c.c.Close()
		},
		func(t *testing.T) { // STARTTLS, then a login that pipes; the client goes without LOGOUT
			c, _ := dial(t, "", addr)
			c.send("STARTTLS\r\n")
			c.response("OK")
			c.startTLS(pki.client)
			c.response("OK") // the capabilities again
			c.send(authPlain + "NOOP\r\n")
			c.response("OK")
			c.response("OK")
			c.c.Close()
		},
		func(t *testing.T) { // vanished during the STARTTLS handshake
			c, _ := dial(t, "", addr)
			c.send("STARTTLS\r\n")
			c.response("OK")
			c.c.Close()
		},
	}
	gatewaytest.NoFDLeak(t, 4, kinds, func() float64 {
		return gatewaytest.Gauge(t, reg, "pipegate_sieve_sessions_active")
	})
}
