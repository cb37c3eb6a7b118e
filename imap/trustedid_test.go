package imap_test

import (
	"context"
	"net/netip"
	"strconv"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/route"
)

// TestTrustedProxyID: a proxy in front whose address is in
// TrustedNetworks tells its client's address with ID x-originating-ip
// and x-originating-port, as Dovecot's imap-login takes them from
// login_trusted_networks: the route lookup and the backend's ID get that
// address. From anyone else, or with a value that does not parse, the
// connection's own address stays.
func TestTrustedProxyID(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		id      string
		want    netip.AddrPort
	}{
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			`("name" "pipegate" "x-originating-ip" "10.9.9.9" "x-originating-port" "5555" "x-session-ext-id" "front1")`,
			netip.MustParseAddrPort("10.9.9.9:5555")},
		{"trusted, IPv6 without port", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			`("X-Originating-IP" "2001:db8::7")`, netip.MustParseAddrPort("[2001:db8::7]:0")},
		{"trusted, bad address", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			`("x-originating-ip" "10.9.9.9%eth0" "x-originating-port" "5555")`, netip.AddrPort{}},
		{"untrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			`("x-originating-ip" "10.9.9.9" "x-originating-port" "5555")`, netip.AddrPort{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, fields, _ := loginAfterID(t, tc.trusted, tc.id)
			client := req.ClientAddr
			if tc.want.IsValid() || tc.want.Addr().IsValid() {
				if client != tc.want {
					t.Errorf("route lookup's client %s, want %s", client, tc.want)
				}
				wantPort := ""
				if tc.want.Port() != 0 {
					wantPort = strconv.Itoa(int(tc.want.Port()))
				}
				if fields["x-originating-ip"] != tc.want.Addr().String() || fields["x-originating-port"] != wantPort {
					t.Errorf("backend's ID x-originating-ip %q port %q, want %s port %q (fields %q)",
						fields["x-originating-ip"], fields["x-originating-port"], tc.want.Addr(), wantPort, fields)
				}
				return
			}
			if client.Addr().String() != "127.0.0.1" || fields["x-originating-ip"] != "127.0.0.1" {
				t.Errorf("route lookup's client %s, backend's x-originating-ip %q: want the connection's 127.0.0.1", client, fields["x-originating-ip"])
			}
			if fields["x-originating-port"] == "5555" {
				t.Errorf("a port from an untrusted or refused ID reached the backend: %q", fields)
			}
		})
	}
}

// TestTrustedProxyIDLocal: a trusted proxy in front tells where its
// client connected with ID x-connected-ip and x-connected-port, as
// Dovecot's imap-login takes them: the route lookup's LocalAddr (local:
// rules) and the backend's x-connected-ip get that address; without a
// port the connection's port stays. The client's address is not touched
// by them. From anyone else, or with a value that does not parse, the
// connection's own local address stays.
func TestTrustedProxyIDLocal(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, tc := range []struct {
		name       string
		trusted    []netip.Prefix
		id         string
		local      string // "": the connection's; ":port" appends the proxy's port
		wantClient string // "": the connection's
	}{
		{"trusted", loopback,
			`("x-connected-ip" "192.0.2.9" "x-connected-port" "993")`, "192.0.2.9:993", ""},
		{"trusted, with the client", loopback,
			`("x-originating-ip" "10.9.9.9" "x-originating-port" "5555" "X-Connected-IP" "::ffff:192.0.2.10" "x-connected-port" "143")`,
			"192.0.2.10:143", "10.9.9.9:5555"},
		{"trusted, IPv6 without port", loopback, `("x-connected-ip" "2001:db8::25")`, "[2001:db8::25]:port", ""},
		{"trusted, port without address", loopback, `("x-connected-port" "993")`, "", ""},
		{"trusted, bad address", loopback, `("x-connected-ip" "192.0.2.9%eth0" "x-connected-port" "993")`, "", ""},
		{"trusted, bad port", loopback, `("x-connected-ip" "192.0.2.9" "x-connected-port" "0")`, "192.0.2.9:port", ""},
		{"untrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			`("x-connected-ip" "192.0.2.9" "x-connected-port" "993")`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, fields, gw := loginAfterID(t, tc.trusted, tc.id)
			wantLocal := gatewaytest.WantLocal(gw, tc.local)
			if req.LocalAddr != wantLocal {
				t.Errorf("route lookup's local address %s, want %s", req.LocalAddr, wantLocal)
			}
			if tc.wantClient != "" && req.ClientAddr.String() != tc.wantClient ||
				tc.wantClient == "" && req.ClientAddr.Addr().String() != "127.0.0.1" {
				t.Errorf("route lookup's client %s, want %q (or the connection's)", req.ClientAddr, tc.wantClient)
			}
			if fields["x-connected-ip"] != wantLocal.Addr().String() || fields["x-connected-port"] != strconv.Itoa(int(wantLocal.Port())) {
				t.Errorf("backend's ID x-connected-ip %q port %q, want %s (fields %q)",
					fields["x-connected-ip"], fields["x-connected-port"], wantLocal, fields)
			}
		})
	}
}

// loginAfterID logs in through a proxy that trusts trusted, after the
// client's ID with the list id: it returns the route request, the fields
// of the ID the backend got, and the proxy's address.
func loginAfterID(t *testing.T, trusted []netip.Prefix, id string) (route.Request, map[string]string, netip.AddrPort) {
	t.Helper()
	got := make(seen, 10)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN] fake ready\r\n")
		fc.answerIDThenLogin(got, " OK [CAPABILITY IMAP4rev1] Logged in\r\n")
	})
	b, _ := route.ParseBackend("imap://" + fb.addr)
	looked := make(chan route.Request, 1)
	r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		looked <- req
		return route.Route{Backends: []route.Backend{b}}, nil
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}, TrustedNetworks: trusted})
	c := dialRaw(t, p.addr)
	c.send("a ID " + id + "\r\n")
	c.expectPrefix("a OK")
	c.send("b LOGIN alice apass\r\n")
	c.expectPrefix("b OK")
	req := <-looked
	cmd := got.next(t)
	if cmd.Name != "ID" || len(cmd.Args) != 1 || cmd.Args[0].Kind != wire.KindList {
		t.Fatalf("backend's first command %+v, want ID", cmd)
	}
	fields := map[string]string{}
	for l, i := cmd.Args[0].List, 0; i+1 < len(l); i += 2 {
		fields[l[i].Str] = l[i+1].Str
	}
	return req, fields, netip.MustParseAddrPort(p.addr)
}
