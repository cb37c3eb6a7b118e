package imap_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
)

// linkLocal is a link-local client with its zone, which loopback tests
// cannot make.
var linkLocal = &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 40001, Zone: "lo"}

// TestLinkLocalClientID: a link-local client's address goes to Dovecot in ID
// x-originating-ip without its zone (Dovecot's net_addr2ip takes none);
// Dovecot then logs rip=fe80::1.
func TestLinkLocalClientID(t *testing.T) {
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret"},
		TrustedNetworks: []string{"127.0.0.1/32"},
	})
	srv := &imap.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"imap://" + d.Addr}}),
		AllowPlaintextAuth: true,
	}}
	gatewaytest.Defaults(t, &srv.Server)
	l := gatewaytest.Listen(t)
	gatewaytest.Serve(t, srv, gatewaytest.Listener{Listener: gatewaytest.PeerAs(l, linkLocal)})
	c := dialRaw(t, l.Addr().String())
	c.send("a LOGIN alice@a.test secret\r\n")
	if got := c.expectPrefix("a "); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("login: %q", got)
	}
	c.send("b LOGOUT\r\n")
	if _, err := d.FindLog(`imap-login: Info: Login: user=<alice@a\.test>, .*rip=fe80::1,`, 10*time.Second); err != nil {
		got, _ := d.FindLog(`imap-login: Info: Login: .*`, 0)
		t.Errorf("Dovecot did not get the client's address: %s", got)
	}
}
