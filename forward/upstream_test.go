package forward

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testserver"
)

func testPool(b Balance, addrs ...string) *pool {
	var book healthBook
	p := &pool{balance: b}
	for _, a := range addrs {
		u, err := newUpstream(a, nil, &book)
		if err != nil {
			panic(err)
		}
		p.upstreams = append(p.upstreams, u)
	}
	return p
}

func order(us []*upstream) []string {
	var s []string
	for _, u := range us {
		s = append(s, u.addr)
	}
	return s
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCandidates(t *testing.T) {
	now := time.Now()
	p := testPool(Order, "a:1", "b:1", "c:1")
	if got := order(p.candidates(now)); !equal(got, []string{"a:1", "b:1", "c:1"}) {
		t.Errorf("order: %v", got)
	}
	// a failing upstream moves to the end while it backs off...
	p.upstreams[0].health.failed(now, time.Second)
	if got := order(p.candidates(now)); !equal(got, []string{"b:1", "c:1", "a:1"}) {
		t.Errorf("a backing off: %v", got)
	}
	// ...and is back in place afterwards.
	if got := order(p.candidates(now.Add(2 * time.Second))); !equal(got, []string{"a:1", "b:1", "c:1"}) {
		t.Errorf("a after back-off: %v", got)
	}
	// Of two backing off, the one retrying sooner comes first.
	p.upstreams[1].health.failed(now, time.Second)
	p.upstreams[0].health.failed(now, time.Second) // second failure: 2s
	if got := order(p.candidates(now)); !equal(got, []string{"c:1", "b:1", "a:1"}) {
		t.Errorf("a and b backing off: %v", got)
	}
	p.upstreams[0].health.succeeded()
	if got := order(p.candidates(now)); !equal(got, []string{"a:1", "c:1", "b:1"}) {
		t.Errorf("a recovered: %v", got)
	}
}

func TestCandidatesRoundRobin(t *testing.T) {
	p := testPool(RoundRobin, "a:1", "b:1", "c:1")
	now := time.Now()
	var firsts []string
	for range 4 {
		firsts = append(firsts, p.candidates(now)[0].addr)
	}
	if !equal(firsts, []string{"a:1", "b:1", "c:1", "a:1"}) {
		t.Errorf("round robin firsts: %v", firsts)
	}
	// With a down (backing off) the turn goes over b and c alone, as with
	// HAProxy's and nginx's round robin: b does not also take a's share.
	p.upstreams[0].health.failed(now, time.Hour)
	counts := map[string]int{}
	for range 6 {
		cands := p.candidates(now)
		counts[cands[0].addr]++
		if last := cands[len(cands)-1].addr; last != "a:1" {
			t.Fatalf("the upstream backing off is not last: %v", order(cands))
		}
	}
	if counts["b:1"] != 3 || counts["c:1"] != 3 {
		t.Errorf("6 connections with a down: firsts %v, want b:1 and c:1 three times each", counts)
	}
}

// TestRoundRobinEvenWhenOneDown: the same through a server, on both accept
// paths.
func TestRoundRobinEvenWhenOneDown(t *testing.T) {
	bothAcceptPaths(t, func(t *testing.T, startServer serverStarter) {
		down := closedPort(t)
		b := startUpstream(t, nil, testserver.Greet("b"))
		c := startUpstream(t, nil, testserver.Greet("c"))
		_, addr, _, _ := startServer(t, Config{Upstreams: []string{down, b, c}, Balance: RoundRobin, Backoff: time.Hour})
		// The first connection finds the down upstream and backs it off.
		if got := roundTrip(t, dial(t, addr), ""); got != "b" {
			t.Fatalf("first connection got %q", got)
		}
		counts := map[string]int{}
		for range 6 {
			counts[roundTrip(t, dial(t, addr), "")]++
		}
		if counts["b"] != 3 || counts["c"] != 3 {
			t.Errorf("6 connections with one of 3 upstreams down: %v, want b:3 c:3", counts)
		}
	})
}

// TestIdleTimeoutAfterDial: the idle timeout counts from the upstream's
// connect, as on the Go path (and as HAProxy's timeout connect and nginx's
// proxy_connect_timeout stand apart from their idle timeouts): a client
// whose first upstream does not answer is not ended by an idle timeout
// shorter than dial_timeout, and the next upstream is tried.
func TestIdleTimeoutAfterDial(t *testing.T) {
	bothAcceptPaths(t, func(t *testing.T, startServer serverStarter) {
		full := testserver.FullListener(t)
		up := startUpstream(t, nil, testserver.Echo)
		_, addr, rec, _ := startServer(t, Config{Upstreams: []string{full.String(), up}, DialTimeout: 600 * time.Millisecond, IdleTimeout: 150 * time.Millisecond})
		c := dial(t, addr)
		c.SetDeadline(time.Now().Add(testTimeout))
		c.Write([]byte("x"))
		c.(*net.TCPConn).CloseWrite()
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil || b[0] != 'x' {
			t.Fatalf("idle_timeout 150ms < dial_timeout 600ms: client got %q, %v while the first upstream was tried; log %v", b, err, rec.wait(t, "connection refused", 1))
		}
	})
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	var h health
	now := time.Now()
	var got []time.Duration
	for range 8 {
		h.failed(now, time.Second)
		got = append(got, h.retryAt().Sub(now))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("back-offs %v, want %v seconds", got, want)
		}
	}
}

// TestBackoffAboveCap: a configured back-off longer than MaxBackoff is
// kept, not cut to it.
func TestBackoffAboveCap(t *testing.T) {
	var h health
	now := time.Now()
	for range 3 {
		h.failed(now, time.Minute)
		if got := h.retryAt().Sub(now); got != time.Minute {
			t.Fatalf("backoff 1m gives a back-off of %v", got)
		}
	}
}

func TestUpstreamTLSServerName(t *testing.T) {
	var book healthBook
	base := testClientTLS()
	u, err := newUpstream("backend.example:443", base, &book)
	if err != nil || u.tls.ServerName != "backend.example" {
		t.Fatalf("server name %q, err %v; want backend.example", u.tls.ServerName, err)
	}
	if base.ServerName != "" {
		t.Fatal("base config modified")
	}
	if _, err := newUpstream("unix:/run/x.sock", base, &book); err == nil {
		t.Fatal("TLS to a unix socket without server name: no error")
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:1"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"listen", func(c *Config) { c.Listen = "nocolon" }},
		{"listen", func(c *Config) { c.Listen = "unix:" }},
		{"to", func(c *Config) { c.Upstreams = nil }},
		{"to", func(c *Config) { c.Upstreams = []string{"127.0.0.1:99999"} }},
		{"sni", func(c *Config) { c.Routes = []Route{{ServerName: "a b", Upstreams: []string{"x:1"}}} }},
		{"sni", func(c *Config) { c.Routes = []Route{{ServerName: "a.example"}} }},
		{"send_proxy", func(c *Config) { c.SendProxy = "v3" }},
		{"trusted_proxy", func(c *Config) { c.AcceptProxy = true }},
		{"max_conns", func(c *Config) { c.MaxConns = -1 }},
		{"dial_timeout", func(c *Config) { c.DialTimeout = -time.Second }},
		{"half_close_linger", func(c *Config) { c.HalfCloseLinger = -time.Second }},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		fe, isField := err.(*FieldError)
		if !isField || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError for %s", tc.field, err, tc.field)
		}
	}
}

// When every upstream fails, HAProxy (checked: 2.6, mode tcp, retries)
// closes the client's connection with a FIN even when the client already
// sent its request: the client reads EOF. pipegate closed without reading,
// so the client got a reset; it drops what is queued first now.
func TestAllDownClientSeesEOF(t *testing.T) { bothAcceptPaths(t, testAllDownEOF) }

func testAllDownEOF(t *testing.T, startServer serverStarter) {
	// The last upstream does not answer its SYN: the request is in the
	// forwarder's socket long before the dial timeout refuses the client.
	full := testserver.FullListener(t)
	_, addr, rec, _ := startServer(t, Config{Upstreams: []string{closedPort(t), full.String()}, DialTimeout: 300 * time.Millisecond})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "connection refused", 1)
	b, err := io.ReadAll(c)
	if len(b) != 0 || err != nil {
		t.Errorf("client read %q, %v (reset: %v); want a clean EOF as HAProxy gives", b, err, errors.Is(err, syscall.ECONNRESET))
	}
}
