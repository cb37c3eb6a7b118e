package pop3_test

import (
	"net"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/pop3"
)

const ioTimeoutLinkLocal = 10 * time.Second

// linkLocal is a link-local client with its zone, which loopback tests
// cannot make.
var linkLocal = &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 40001, Zone: "lo"}

// TestLinkLocalClientXClient: a link-local client's address goes to Dovecot
// by XCLIENT without its zone (Dovecot's net_addr2ip takes none, as
// sieve's backend strips it); Dovecot then logs rip=fe80::1.
func TestLinkLocalClientXClient(t *testing.T) {
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret"},
		TrustedNetworks: []string{"127.0.0.1/32"},
		Protocols:       []string{testenv.POP3},
	})
	srv := &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + d.POP3Addr}}),
		AllowPlaintextAuth: true,
	}}
	gatewaytest.Defaults(t, &srv.Server)
	l := gatewaytest.Listen(t)
	gatewaytest.Serve(t, srv, gatewaytest.Listener{Listener: gatewaytest.PeerAs(l, linkLocal)})
	c := dial(t, "127.0.0.1", l.Addr().String())
	c.cmd("USER alice@a.test")
	if got := c.cmd("PASS secret"); got != "+OK Logged in." {
		t.Fatalf("login: %q", got)
	}
	if _, err := d.FindLog(`pop3-login: Info: Login: user=<alice@a\.test>, .*rip=fe80::1,`, ioTimeoutLinkLocal); err != nil {
		got, _ := d.FindLog(`pop3-login: Info: Login: .*`, 0)
		t.Errorf("Dovecot did not get the client's address: %s", got)
	}
}
