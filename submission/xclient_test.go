package submission_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/submission"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

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
			ra := newRoutes(t, map[string][]string{"@a.test": {"submission://" + lb.Addr().String()}})
			rb := newRoutes(t, map[string][]string{"@a.test": {"submission://" + target}})
			for _, g := range []struct {
				r *routes
				l gatewaytest.Listener
			}{{ra, gatewaytest.Listener{Listener: la}}, {rb, gatewaytest.Listener{Listener: lb}}} {
				srv := &submission.Server{Server: gateway.Server{Router: g.r, AllowPlaintextAuth: true, Hostname: "gw.test"}, TrustedNetworks: loopback}
				gatewaytest.Defaults(t, &srv.Server)
				gatewaytest.Serve(t, srv, g.l)
			}

			c := dialRaw(t, "127.0.0.1", la.Addr().String())
			c.reply()
			c.send("EHLO client.test\r\n")
			c.reply()
			c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "454 4.7.0 Temporary authentication failure")
			if n := ra.lookups() + rb.lookups(); n != gateway.DefaultProxyTTL-1 {
				t.Errorf("%d route lookups along the loop, want %d", n, gateway.DefaultProxyTTL-1)
			}
		})
	}
}

// TestXClientTrusted: a trusted proxy sees XCLIENT in the EHLO reply;
// after XCLIENT the session starts again with 220; ADDR and PORT go on to
// the backend, TTL lowers the session's (TTL=1: the login is refused as
// unavailable, without a route lookup); bad attributes get 501 with
// nothing applied.
func TestXClientTrusted(t *testing.T) {
	fb := startXClientFake(t)
	rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + fb.addr}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true}, TrustedNetworks: loopback})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.cmd("EHLO proxy.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-AUTH PLAIN LOGIN\n250 XCLIENT ADDR PORT PROTO HELO DESTADDR DESTPORT SESSION TTL")
	for _, tc := range []struct{ send, want string }{
		{"XCLIENT ADDR=10.1.2.3 PORT=0", "501 5.5.4 Invalid PORT parameter: not a port number (1 to 65535)"},
		{"XCLIENT ADDR=2001:db8::1", "501 5.5.4 Invalid ADDR parameter: not an IPv4 address or IPV6: and an IPv6 address"},
		{"XCLIENT FOO=bar", "501 5.5.4 Bad XCLIENT attribute name: FOO"},
		{"XCLIENT ADDR", "501 5.5.4 Syntax: XCLIENT attribute=value ..."},
		{"XCLIENT HELO=a+zz", `501 5.5.4 Invalid HELO parameter: "+" without two upper-case hex digits in xtext`},
		{"xclient addr=10.1.2.3 Port=5555 HELO=client.test PROTO=ESMTP SESSION=abc TTL=3 NAME=[TEMPUNAVAIL]", "220 gw.test ESMTP pipegate"},
		{"AUTH PLAIN " + plain("", "alice@a.test", "secret"), "503 5.5.1 Send EHLO first"},
		{"XCLIENT TTL=9", "220 gw.test ESMTP pipegate"}, // cannot raise it again
		{"EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-AUTH PLAIN LOGIN\n250 XCLIENT ADDR PORT PROTO HELO DESTADDR DESTPORT SESSION TTL"},
		{"AUTH PLAIN " + plain("", "alice@a.test", "secret"), "235 2.7.0 Authentication successful"},
	} {
		c.cmd(tc.send, tc.want)
	}
	want := regexp.MustCompile(`^XCLIENT ADDR=10\.1\.2\.3 PORT=5555 HELO=client\.test PROTO=ESMTP SESSION=[0-9a-f]{16} TTL=2$`)
	if got := fb.lines(); len(got) < 2 || !want.MatchString(got[1]) {
		t.Fatalf("backend got %q, want XCLIENT as %s", got, want)
	}

	before := rt.lookups()
	c = dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.send("XCLIENT TTL=1\r\n")
	c.reply()
	c.send("EHLO proxy.test\r\n")
	c.reply()
	c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "454 4.7.0 Temporary authentication failure")
	if n := rt.lookups() - before; n != 0 {
		t.Fatalf("%d route lookups with TTL=1, want none", n)
	}
}

// TestXClientUntrusted: from outside TrustedNetworks EHLO does not list
// XCLIENT and XCLIENT is "502 5.5.1 Command not implemented"; the backend
// then hears of the client's own address and the default TTL.
func TestXClientUntrusted(t *testing.T) {
	fb := startXClientFake(t)
	rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + fb.addr}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	c := dialRaw(t, "127.0.0.2", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN")
	c.cmd("XCLIENT ADDR=10.1.2.3 TTL=1", "502 5.5.1 Command not implemented")
	c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.7.0 Authentication successful")
	if got := fb.lines(); len(got) < 2 || !strings.HasPrefix(got[1], "XCLIENT ADDR=127.0.0.2 PORT=") || !strings.HasSuffix(got[1], " TTL=4") {
		t.Fatalf("backend got %q", got)
	}
}

// startXClientFake starts a backend that offers XCLIENT as Dovecot's
// submission-login does (startXClientFakeOffering).
func startXClientFake(t *testing.T) *fakeBackend {
	return startXClientFakeOffering(t, "ADDR PORT PROTO HELO SESSION TTL")
}

// startXClientFakeOffering starts a backend that offers XCLIENT with the
// attributes params, takes it and a login: the proxy's EHLO, XCLIENT and
// a new 220, EHLO again, then AUTH succeeds.
func startXClientFakeOffering(t *testing.T, params string) *fakeBackend {
	return startFake(t, func(next func() string, send func(string)) {
		send("220 fake ESMTP\r\n")
		ehlo := "250-fake\r\n250-XCLIENT " + params + "\r\n250 AUTH PLAIN\r\n"
		next() // EHLO gw.test
		send(ehlo)
		next() // XCLIENT
		send("220 fake ESMTP\r\n")
		next() // EHLO
		send(ehlo)
		next() // AUTH
		send("235 2.7.0 Authentication successful\r\n")
	})
}
