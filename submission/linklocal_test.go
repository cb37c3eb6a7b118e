package submission_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/submission"
)

// linkLocal is a link-local client with its zone, which loopback tests
// cannot make.
var linkLocal = &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 40001, Zone: "lo"}

// TestLinkLocalClientXClient: a link-local client's address goes to Dovecot
// by XCLIENT ADDR=IPV6:fe80::1 without its zone (Postfix's XCLIENT_README
// and Dovecot's net_addr2ip take none); Dovecot then logs rip=fe80::1.
func TestLinkLocalClientXClient(t *testing.T) {
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret"},
		TrustedNetworks: []string{"127.0.0.1/32"},
		Protocols:       []string{testenv.Submission},
	})
	srv := &submission.Server{Server: gateway.Server{
		Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + d.SubmissionAddr}}),
		AllowPlaintextAuth: true,
	}}
	srv.Hostname = "gw.test"
	gatewaytest.Defaults(t, &srv.Server)
	l := gatewaytest.Listen(t)
	gatewaytest.Serve(t, srv, gatewaytest.Listener{Listener: gatewaytest.PeerAs(l, linkLocal)})
	c := dialRaw(t, "127.0.0.1", l.Addr().String())
	c.reply()
	c.send("EHLO client.test\r\n")
	c.reply()
	c.send("AUTH PLAIN " + plain("", "alice@a.test", "secret") + "\r\n")
	if r := c.reply(); !strings.HasPrefix(r, "235") {
		t.Fatalf("AUTH: %q", r)
	}
	c.send("QUIT\r\n")
	if _, err := d.FindLog(`submission-login: Info: Login: user=<alice@a\.test>, .*rip=fe80::1,`, 10*time.Second); err != nil {
		got, _ := d.FindLog(`submission-login: Info: Login: .*`, 0)
		t.Errorf("Dovecot did not get the client's address: %s", got)
	}
}
