package pop3_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// TestXClientLoop: two gateways that trust each other, the second's route
// pointing back at the first or at itself: each hop passes TTL-1 by
// XCLIENT, and the hop that gets TTL=1 refuses as unavailable, which
// every hop before relays; the loop ends after DefaultProxyTTL hops.
func TestXClientLoop(t *testing.T) {
	for _, back := range []string{"first", "itself"} {
		t.Run("back to "+back, func(t *testing.T) {
			a := startProxy(t, &pop3.Server{Server: gateway.Server{AllowPlaintextAuth: true}, TrustedNetworks: loopback})
			b := startProxy(t, &pop3.Server{Server: gateway.Server{AllowPlaintextAuth: true}, TrustedNetworks: loopback})
			target := a.addr
			if back == "itself" {
				target = b.addr
			}
			ra := routes(t, map[string][]string{"@a.test": {"pop3://" + b.addr}})
			rb := routes(t, map[string][]string{"@a.test": {"pop3://" + target}})
			a.srv.SetRouter(ra)
			b.srv.SetRouter(rb)

			c := dial(t, "", a.addr)
			c.cmd("USER alice@a.test")
			if l := c.cmd("PASS secret"); !strings.HasPrefix(l, "-ERR [SYS/TEMP] ") {
				t.Fatalf("login through the loop: %q, want -ERR [SYS/TEMP]", l)
			}
			// Every hop with a TTL above 1 looked the account up; the last
			// refused before routing.
			if n := ra.lookups.Load() + rb.lookups.Load(); n != gateway.DefaultProxyTTL-1 {
				t.Errorf("%d route lookups along the loop, want %d", n, gateway.DefaultProxyTTL-1)
			}
		})
	}
}

// TestXClientTrusted: a trusted proxy is greeted with [XCLIENT]; its
// ADDR and PORT go on to the backend, its TTL lowers the session's (TTL=1:
// the login is refused as unavailable, without a route lookup); bad
// parameters are refused with nothing applied.
func TestXClientTrusted(t *testing.T) {
	f := startFake(t, fakeOpts{greeting: "+OK [XCLIENT] ready", caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	r := routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr}})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}, TrustedNetworks: loopback})

	c := dial(t, "", p.addr)
	for _, tc := range []struct{ send, want string }{
		{"XCLIENT ADDR=10.1.2.3 PORT=0", "-ERR Invalid parameters"},
		{"XCLIENT ADDR=10.1.2.3 TTL=-1", "-ERR Invalid parameters"},
		{"XCLIENT ADDR=fe80::1%eth0", "-ERR Invalid parameters"},
		{"xclient addr=10.1.2.3 Port=5555 SESSION=abc TTL=3 FORWARD=x junk", "+OK Updated"},
		{"XCLIENT TTL=9", "+OK Updated"}, // cannot raise it again
		{"USER alice@a.test", "+OK"},
		{"PASS pw", "+OK Logged in."},
	} {
		if l := c.cmd(tc.send); !strings.HasPrefix(l, tc.want) {
			t.Fatalf("%q: got %q, want %q", tc.send, l, tc.want)
		}
	}
	want := regexp.MustCompile(`^XCLIENT ADDR=10\.1\.2\.3 PORT=5555 SESSION=[0-9a-f]{16} TTL=2$`)
	if cmds := f.commands(0); len(cmds) < 2 || !want.MatchString(cmds[1]) {
		t.Fatalf("backend got %q, want CAPA then %s", cmds, want)
	}
	// The session's client is the proxy's client: routes see it.
	if req := r.last.Load(); req == nil || req.ClientAddr.String() != "10.1.2.3:5555" {
		t.Fatalf("route request's client %v, want 10.1.2.3:5555", req)
	}

	before := r.lookups.Load()
	c = dial(t, "", p.addr)
	c.cmd("XCLIENT TTL=1")
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS pw"); l != "-ERR [SYS/TEMP] "+gateway.TextUnavailable {
		t.Fatalf("login with TTL=1: %q, want unavailable", l)
	}
	if n := r.lookups.Load() - before; n != 0 {
		t.Fatalf("%d route lookups with TTL=1, want none", n)
	}
}

// TestXClientUntrusted: from outside TrustedNetworks the greeting has no
// [XCLIENT] and XCLIENT is refused as any over-long keyword.
func TestXClientUntrusted(t *testing.T) {
	f := startFake(t, fakeOpts{greeting: "+OK [XCLIENT] ready", caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	r := routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr}})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	c := dial(t, "127.0.0.2", p.addr)
	if strings.Contains(c.greeting, "[XCLIENT]") {
		t.Fatalf("greeting to an untrusted client: %q", c.greeting)
	}
	if l := c.cmd("XCLIENT ADDR=10.1.2.3 TTL=1"); l != "-ERR Invalid command keyword" {
		t.Fatalf("XCLIENT from an untrusted client: %q", l)
	}
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS pw"); l != "+OK Logged in." {
		t.Fatalf("login after a refused XCLIENT: %q", l)
	}
	want := regexp.MustCompile(`^XCLIENT ADDR=127\.0\.0\.2 PORT=\d+ SESSION=[0-9a-f]{16} TTL=4$`)
	if cmds := f.commands(0); len(cmds) < 2 || !want.MatchString(cmds[1]) {
		t.Fatalf("backend got %q, want CAPA then %s", cmds, want)
	}
}
