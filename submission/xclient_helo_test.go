package submission_test

import (
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/submission"
)

// TestXClientLongEHLO: a client's EHLO name whose xtext form is over 255
// octets (any argument that fits the 512-octet line is taken, as Dovecot
// does) goes on as XCLIENT HELO=[UNAVAILABLE]: 300 octets, or 200 8-bit
// ones, which xtext makes 600. Passed on as it is, Postfix and a second
// pipegate behind this one would refuse the whole XCLIENT (HELO is at
// most 255 octets; the command at most 512), and the backend would take
// the gateway's address for the client's, or the login would fail.
func TestXClientLongEHLO(t *testing.T) {
	for _, name := range []string{strings.Repeat("h", 300), strings.Repeat("\xe9", 200)} {
		fb := startXClientFake(t)
		lb := gatewaytest.Listen(t)
		b := &submission.Server{Server: gateway.Server{
			Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + fb.addr}}),
			AllowPlaintextAuth: true, Hostname: "gw-b.test",
		}, TrustedNetworks: loopback}
		gatewaytest.Defaults(t, &b.Server)
		gatewaytest.Serve(t, b, gatewaytest.Listener{Listener: lb})
		a := startProxy(t, &submission.Server{Server: gateway.Server{
			Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + lb.Addr().String()}}),
			AllowPlaintextAuth: true,
		}})
		c := dialRaw(t, "127.0.0.7", a.addr)
		c.reply()
		c.send("EHLO " + name + "\r\n")
		if r := c.reply(); !strings.HasPrefix(r, "250") {
			t.Fatalf("EHLO: %q", r)
		}
		c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.7.0 Authentication successful")
		got := fb.lines()
		if len(got) < 2 || !strings.HasPrefix(got[1], "XCLIENT ADDR=127.0.0.7 ") {
			t.Fatalf("the backend behind gateway B was told %q, want ADDR=127.0.0.7 (the real client)", got)
		}
	}
}
