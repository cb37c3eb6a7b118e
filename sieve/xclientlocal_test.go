package sieve_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/sieve"
)

// TestXClientLocal: XCLIENT DESTADDR and DESTPORT from a trusted proxy
// say where its client connected: the route lookup's LocalAddr (local:
// rules) and the destination of the PROXY header a backend gets are that
// address, not the gateway's; without DESTPORT the connection's port
// stays. A refused XCLIENT, and any from an untrusted client, change
// nothing.
func TestXClientLocal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string // the client's source address; only 127.0.0.1 is trusted
		xclient string
		answer  string
		local   string // "": the connection's; ":port" appends the gateway's port
	}{
		{"trusted", "127.0.0.1", "XCLIENT ADDR=10.1.2.3 PORT=5555 DESTADDR=192.0.2.9 DESTPORT=4190", "OK", "192.0.2.9:4190"},
		{"trusted, IPv6 without DESTPORT", "127.0.0.1", "xclient destaddr=2001:db8::25", "OK", "[2001:db8::25]:port"},
		{"trusted, DESTPORT alone", "127.0.0.1", "XCLIENT DESTPORT=4190", "OK", ""},
		{"trusted, bad DESTPORT", "127.0.0.1", "XCLIENT DESTADDR=192.0.2.9 DESTPORT=0", "NO", ""},
		{"trusted, DESTADDR not an atom", "127.0.0.1", `XCLIENT "DESTADDR=192.0.2.9"`, "NO", ""},
		{"untrusted", "127.0.0.2", "XCLIENT DESTADDR=192.0.2.9 DESTPORT=4190", "NO", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make(chan netip.AddrPort, 1)
			b, err := route.ParseBackend("sieve://" + proxiedBackend(t, dst) + "?proxy=v1")
			if err != nil {
				t.Fatal(err)
			}
			looked := make(chan route.Request, 1)
			r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
				looked <- req
				return route.Route{Backends: []route.Backend{b}}, nil
			})
			addr := startProxy(t, &sieve.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true},
				TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
			gw := netip.MustParseAddrPort(addr)
			wantLocal := gatewaytest.WantLocal(gw, tc.local)

			c, _ := dial(t, tc.src, addr)
			c.send(tc.xclient + "\r\n")
			c.response(tc.answer)
			c.send(authPlain)
			c.response("OK")
			if req := <-looked; req.LocalAddr != wantLocal {
				t.Errorf("route lookup's local address %s, want %s", req.LocalAddr, wantLocal)
			}
			if got := <-dst; got != wantLocal {
				t.Errorf("backend's PROXY header names the destination %s, want %s", got, wantLocal)
			}
		})
	}
}

// proxiedBackend is a ManageSieve backend that sends the destination of
// the gateway's PROXY header to dst (gatewaytest.ProxiedBackend), then
// takes AUTHENTICATE.
func proxiedBackend(t *testing.T, dst chan<- netip.AddrPort) string {
	return gatewaytest.ProxiedBackend(t, make(chan string, 10), dst, func(c net.Conn, br *bufio.Reader) {
		gatewaytest.Converse(c, br, "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n")
		_, _ = io.WriteString(c, "OK \"Logged in.\"\r\n")
	})
}
