package submission_test

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission"
)

// TestXClientLocal: XCLIENT DESTADDR and DESTPORT from a trusted proxy
// say where its client connected: the route lookup's LocalAddr (local:
// rules) and the DESTADDR/DESTPORT pipegate's own XCLIENT gives a backend
// that lists them are that address, not the gateway's. Without DESTPORT,
// or with [UNAVAILABLE], the connection's port stays; DESTADDR
// [UNAVAILABLE] changes nothing. An untrusted client's XCLIENT is refused
// and changes nothing.
func TestXClientLocal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string // the client's source address; only 127.0.0.1 is trusted
		xclient string // "" sends none
		answer  string
		local   string // "": the connection's; ":port" appends the gateway's port
		client  string // "": the connection's
	}{
		{"trusted", "127.0.0.1", "XCLIENT ADDR=10.1.2.3 PORT=5555 DESTADDR=192.0.2.9 DESTPORT=465", "220 gw.test ESMTP pipegate",
			"192.0.2.9:465", "10.1.2.3:5555"},
		{"trusted, IPv6, no DESTPORT", "127.0.0.1", "XCLIENT destaddr=IPV6:2001:db8::25", "220 gw.test ESMTP pipegate",
			"[2001:db8::25]:port", ""},
		{"trusted, DESTPORT unavailable", "127.0.0.1", "XCLIENT DESTADDR=192.0.2.9 DESTPORT=[UNAVAILABLE]", "220 gw.test ESMTP pipegate",
			"192.0.2.9:port", ""},
		{"trusted, DESTADDR unavailable", "127.0.0.1", "XCLIENT DESTADDR=[UNAVAILABLE] DESTPORT=465", "220 gw.test ESMTP pipegate",
			"", ""},
		{"trusted, bad DESTPORT", "127.0.0.1", "XCLIENT DESTADDR=192.0.2.9 DESTPORT=0",
			"501 5.5.4 Invalid DESTPORT parameter: not a port number (1 to 65535)", "", ""},
		{"trusted, bad DESTADDR", "127.0.0.1", "XCLIENT DESTADDR=2001:db8::25",
			"501 5.5.4 Invalid DESTADDR parameter: not an IPv4 address or IPV6: and an IPv6 address", "", ""},
		{"untrusted", "127.0.0.2", "XCLIENT DESTADDR=192.0.2.9 DESTPORT=465", "502 5.5.1 Command not implemented", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := startXClientFakeOffering(t, "NAME ADDR PORT PROTO HELO REVERSE_NAME LOGIN DESTADDR DESTPORT") // Postfix's
			b, err := route.ParseBackend("submission://" + fb.addr)
			if err != nil {
				t.Fatal(err)
			}
			looked := make(chan route.Request, 1)
			r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
				looked <- req
				return route.Route{Backends: []route.Backend{b}}, nil
			})
			p := startProxy(t, &submission.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true},
				TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
			gw := netip.MustParseAddrPort(p.addr)
			wantLocal := gatewaytest.WantLocal(gw, tc.local)

			c := dialRaw(t, tc.src, p.addr)
			c.reply()
			c.send("EHLO proxy.test\r\n")
			c.reply()
			c.cmd(tc.xclient, tc.answer)
			c.send("EHLO client.test\r\n")
			c.reply()
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.7.0 Authentication successful")

			req := <-looked
			if req.LocalAddr != wantLocal {
				t.Errorf("route lookup's local address %s, want %s", req.LocalAddr, wantLocal)
			}
			if tc.client != "" && req.ClientAddr.String() != tc.client || tc.client == "" && req.ClientAddr.Addr().String() != tc.src {
				t.Errorf("route lookup's client %s, want %q (or the connection's)", req.ClientAddr, tc.client)
			}
			dest := "DESTADDR=" + wantLocal.Addr().String() + " DESTPORT=" + strconv.Itoa(int(wantLocal.Port()))
			if wantLocal.Addr().Is6() {
				dest = "DESTADDR=IPV6:" + wantLocal.Addr().String() + " DESTPORT=" + strconv.Itoa(int(wantLocal.Port()))
			}
			want := regexp.MustCompile(`^XCLIENT ADDR=\S+ PORT=\d+ HELO=client\.test PROTO=ESMTP ` + regexp.QuoteMeta(dest) + `$`)
			if got := fb.lines(); len(got) < 2 || !want.MatchString(got[1]) {
				t.Fatalf("backend got %q, want XCLIENT as %s", got, want)
			}
		})
	}
}
