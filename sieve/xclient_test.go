package sieve_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/sieve"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

const authPlain = `AUTHENTICATE "PLAIN" "AGFsaWNlQGEudGVzdABzZWNyZXQ="` + "\r\n" // alice@a.test, secret

// TestXClientLoop: two gateways that trust each other, the second's route
// pointing back at the first or at itself: each hop passes TTL-1 by
// XCLIENT, and the hop that gets TTL=1 refuses as unavailable, which
// every hop before relays; the loop ends after DefaultProxyTTL hops.
func TestXClientLoop(t *testing.T) {
	for _, back := range []string{"first", "itself"} {
		t.Run("back to "+back, func(t *testing.T) {
			la, lb := gatewaytest.Listen(t), gatewaytest.Listen(t)
			target := la.Addr().String()
			if back == "itself" {
				target = lb.Addr().String()
			}
			ra, rb := newRouter(t, "sieve://"+lb.Addr().String()), newRouter(t, "sieve://"+target)
			a := serveProxy(t, &sieve.Server{Server: gateway.Server{Router: ra, AllowPlaintextAuth: true}, TrustedNetworks: loopback}, la)
			serveProxy(t, &sieve.Server{Server: gateway.Server{Router: rb, AllowPlaintextAuth: true}, TrustedNetworks: loopback}, lb)

			c, _ := dial(t, "", a)
			c.send(authPlain)
			if got := c.response("NO"); got != `NO (TRYLATER) "`+gateway.TextUnavailable+"\"\r\n" {
				t.Fatalf("login through the loop: %q", got)
			}
			if n := ra.lookups.Load() + rb.lookups.Load(); n != gateway.DefaultProxyTTL-1 {
				t.Errorf("%d route lookups along the loop, want %d", n, gateway.DefaultProxyTTL-1)
			}
		})
	}
}

// TestXClientTrusted: a trusted proxy sees XCLIENT in the capabilities;
// its ADDR and PORT go on to the backend, its TTL lowers the session's
// (TTL=1: the login is refused as unavailable, without a route lookup);
// bad parameters are refused with nothing applied.
func TestXClientTrusted(t *testing.T) {
	addr, r, f := fakeProxy(t, func(s *sieve.Server) { s.TrustedNetworks = loopback })
	c, greeting := dial(t, "", addr)
	if !strings.Contains(greeting, "\"VERSION\" \"1.0\"\r\n\"XCLIENT\"\r\n") {
		t.Fatalf("greeting to a trusted proxy:\n%s", greeting)
	}
	for _, tc := range []struct{ send, want string }{
		{"XCLIENT ADDR=10.1.2.3 PORT=0", "NO"},
		{`XCLIENT "ADDR=10.1.2.3"`, "NO"},
		{"XCLIENT TTL=x", "NO"},
		{"xclient addr=10.1.2.3 Port=5555 SESSION=abc TTL=3 DESTNAME=x junk", "OK"},
		{"XCLIENT TTL=9", "OK"}, // cannot raise it again
		{strings.TrimSuffix(authPlain, "\r\n"), "OK"},
	} {
		c.send(tc.send + "\r\n")
		c.response(tc.want)
	}
	want := regexp.MustCompile(`^ADDR=10\.1\.2\.3 PORT=5555 SESSION=[0-9a-f]{16} TTL=2$`)
	if xc := f.xclients(); len(xc) != 1 || !want.MatchString(xc[0]) {
		t.Fatalf("backend got XCLIENT %q, want %s", xc, want)
	}

	before := r.lookups.Load()
	c, _ = dial(t, "", addr)
	c.send("XCLIENT TTL=1\r\n")
	c.response("OK")
	c.send(authPlain)
	if got := c.response("NO"); got != `NO (TRYLATER) "`+gateway.TextUnavailable+"\"\r\n" {
		t.Fatalf("login with TTL=1: %q", got)
	}
	if n := r.lookups.Load() - before; n != 0 {
		t.Fatalf("%d route lookups with TTL=1, want none", n)
	}
}

// TestXClientUntrusted: from outside TrustedNetworks the capabilities do
// not list XCLIENT and XCLIENT is an unknown command.
func TestXClientUntrusted(t *testing.T) {
	addr, _, f := fakeProxy(t, func(s *sieve.Server) {
		s.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	c, greeting := dial(t, "127.0.0.2", addr)
	if strings.Contains(greeting, "XCLIENT") {
		t.Fatalf("greeting to an untrusted client:\n%s", greeting)
	}
	c.send("XCLIENT ADDR=10.1.2.3 TTL=1\r\n")
	if got := c.response("NO"); got != "NO \"Unknown command XCLIENT\"\r\n" {
		t.Fatalf("XCLIENT from an untrusted client: %q", got)
	}
	c.send(authPlain)
	c.response("OK")
	if xc := f.xclients(); len(xc) != 1 || !strings.HasPrefix(xc[0], "ADDR=127.0.0.2 ") || !strings.HasSuffix(xc[0], " TTL=4") {
		t.Fatalf("backend got XCLIENT %q", xc)
	}
}
