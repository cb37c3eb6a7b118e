package submission_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/submission"
)

// TestNoFDLeak: after many sessions of every kind (logins that pipe,
// failed logins, clients that vanish before or during a login, STARTTLS)
// the process holds the descriptors it held before, once the gateway
// counts no session left.
func TestNoFDLeak(t *testing.T) {
	pki := newPKI(t)
	be := startBackend(t, users, nil, false)
	reg := prometheus.NewRegistry()
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + be.addr + "?client_addr=none"}}),
		TLSConfig:          pki.server,
		AllowPlaintextAuth: true,
		Metrics:            submission.NewMetrics(reg),
	}})
	ehlo := func(c *rawClient) {
		c.send("EHLO client.test\r\n")
		c.reply()
	}
	kinds := []func(*testing.T){
		func(t *testing.T) { // logged in and piped
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.0.0 Authentication succeeded")
			c.send("NOOP\r\n")
			c.reply()
			c.send("QUIT\r\n")
			c.reply()
		},
		func(t *testing.T) { // refused
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "wrong"), "535 5.7.8 Authentication credentials invalid")
			c.cmd("QUIT", "221 2.0.0 Bye")
		},
		func(t *testing.T) { // vanished after EHLO
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.conn.Close()
		},
		func(t *testing.T) { // vanished in the middle of AUTH
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.cmd("AUTH PLAIN", "334 ")
			c.conn.Close()
		},
		func(t *testing.T) { // STARTTLS, then a login that pipes; the client goes without QUIT
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.send("STARTTLS\r\n")
			c.reply()
			c.startTLS(pki.client)
			ehlo(c)
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.0.0 Authentication succeeded")
			c.send("NOOP\r\n")
			c.reply()
			c.conn.Close()
		},
		func(t *testing.T) { // vanished during the STARTTLS handshake
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			ehlo(c)
			c.send("STARTTLS\r\n")
			c.reply()
			c.conn.Close()
		},
	}
	gatewaytest.NoFDLeak(t, 4, kinds, func() float64 {
		return gatewaytest.Gauge(t, reg, "pipegate_submission_sessions_active")
	})
}
