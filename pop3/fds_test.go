package pop3_test

import (
	"crypto/tls"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/pop3"
)

// TestNoFDLeak: after many sessions of every kind (logins that pipe,
// failed logins, clients that vanish before or during a login, STLS, a
// backend whose STLS failed) the process holds the descriptors it held
// before, once the gateway counts no session left.
func TestNoFDLeak(t *testing.T) {
	pki := newPKI(t)
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	// A backend that injects plaintext after its +OK to STLS.
	inj := startFake(t, fakeOpts{tls: pki.server, afterSTLS: "+OK injected\r\n", users: map[string]string{"bob@b.test": "pw"}})
	reg := prometheus.NewRegistry()
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router: routes(t, map[string][]string{
			"@a.test": {"pop3://" + f.addr},
			"@b.test": {"pop3+starttls://" + inj.addr + "?server_name=localhost&client_addr=none"},
		}),
		BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
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
		func(t *testing.T) { // a backend that failed its STLS
			c := dial(t, "", p.addr)
			c.cmd("USER bob@b.test")
			if l := c.cmd("PASS pw"); l != "-ERR [SYS/TEMP] "+gateway.TextUnavailable {
				t.Errorf("login to a backend that injects after STLS: %q", l)
			}
			c.cmd("QUIT")
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
