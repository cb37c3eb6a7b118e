package pop3_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/pop3"
)

// TestNoFDLeak: after many sessions of every kind (logins that pipe,
// failed logins, clients that vanish before or during a login, STLS)
// the process holds the descriptors it held before, once the gateway
// counts no session left.
func TestNoFDLeak(t *testing.T) {
	pki := newPKI(t)
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	reg := prometheus.NewRegistry()
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr}}),
		TLSConfig:          pki.server,
		AllowPlaintextAuth: true,
		Metrics:            pop3.NewMetrics(reg),
	}})
	kinds := []func(*testing.T){
		func(t *testing.T) { // logged in and piped
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			c.cmd("PASS pw")
			if l := c.cmd("STAT"); l != "+OK 2 320" {
				t.Errorf("STAT through the pipe: %q", l)
			}
			c.cmd("QUIT")
		},
		func(t *testing.T) { // refused
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			c.cmd("PASS wrong")
			c.cmd("QUIT")
		},
		func(t *testing.T) { // vanished after USER
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			c.conn.Close()
		},
		func(t *testing.T) { // vanished in the middle of AUTH
			c := dial(t, "", p.addr)
			c.cmd("AUTH PLAIN")
			c.conn.Close()
		},
		func(t *testing.T) { // STLS, then a login that pipes; the client goes without QUIT
			c := dial(t, "", p.addr)
			c.cmd("STLS")
			c.startTLS(pki.client)
			c.cmd("USER alice@a.test")
			c.cmd("PASS pw")
			c.cmd("STAT")
			c.conn.Close()
		},
		func(t *testing.T) { // vanished during the STLS handshake
			c := dial(t, "", p.addr)
			c.cmd("STLS")
			c.conn.Close()
		},
	}
	gatewaytest.NoFDLeak(t, 4, kinds, func() float64 {
		return gatewaytest.Gauge(t, reg, "pipegate_pop3_sessions_active")
	})
}
