package pop3_test

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/pop3"
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
		{"trusted", "127.0.0.1", "XCLIENT ADDR=10.1.2.3 PORT=5555 DESTADDR=192.0.2.9 DESTPORT=995", "+OK Updated", "192.0.2.9:995"},
		{"trusted, IPv6 without DESTPORT", "127.0.0.1", "xclient destaddr=2001:db8::25", "+OK Updated", "[2001:db8::25]:port"},
		{"trusted, DESTPORT alone", "127.0.0.1", "XCLIENT DESTPORT=995", "+OK Updated", ""},
		{"trusted, bad DESTPORT", "127.0.0.1", "XCLIENT DESTADDR=192.0.2.9 DESTPORT=0", "-ERR Invalid parameters", ""},
		{"trusted, bad DESTADDR", "127.0.0.1", "XCLIENT DESTADDR=fe80::1%eth0 DESTPORT=995", "-ERR Invalid parameters", ""},
		{"untrusted", "127.0.0.2", "XCLIENT DESTADDR=192.0.2.9 DESTPORT=995", "-ERR Invalid command keyword", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make(chan netip.AddrPort, 1)
			backend := proxiedBackend(t, dst)
			r := routes(t, map[string][]string{"@a.test": {"pop3://" + backend + "?proxy=v1"}})
			p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true},
				TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
			gw := netip.MustParseAddrPort(p.addr)
			wantLocal := gatewaytest.WantLocal(gw, tc.local)

			c := dial(t, tc.src, p.addr)
			if l := c.cmd(tc.xclient); l != tc.answer {
				t.Fatalf("%q: got %q, want %q", tc.xclient, l, tc.answer)
			}
			c.cmd("USER alice@a.test")
			if l := c.cmd("PASS pw"); l != "+OK Logged in." {
				t.Fatalf("login: %q", l)
			}
			if req := r.last.Load(); req == nil || req.LocalAddr != wantLocal {
				t.Errorf("route request %+v, want LocalAddr %s", req, wantLocal)
			}
			if got := <-dst; got != wantLocal {
				t.Errorf("backend's PROXY header names the destination %s, want %s", got, wantLocal)
			}
		})
	}
}

// proxiedBackend is a POP3 backend that sends the destination of the
// gateway's PROXY header to dst (gatewaytest.ProxiedBackend), then takes
// USER and PASS.
func proxiedBackend(t *testing.T, dst chan<- netip.AddrPort) string {
	return gatewaytest.ProxiedBackend(t, make(chan string, 10), dst, func(c net.Conn, br *bufio.Reader) {
		// Greeting (read CAPA), no CAPA (read USER), +OK (read PASS).
		gatewaytest.Converse(c, br, "+OK ready\r\n", "-ERR\r\n", "+OK\r\n")
		_, _ = io.WriteString(c, "+OK Logged in.\r\n")
	})
}
