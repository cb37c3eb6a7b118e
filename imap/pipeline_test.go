package imap_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/route"
)

// idFields returns the fields of an ID command's list by name.
func idFields(t *testing.T, c *wire.Command) map[string]string {
	t.Helper()
	if c.Name != "ID" || len(c.Args) != 1 || c.Args[0].Kind != wire.KindList {
		t.Fatalf("got %+v, want ID with a list", c)
	}
	m := map[string]string{}
	l := c.Args[0].List
	for i := 0; i+1 < len(l); i += 2 {
		m[l[i].Str] = l[i+1].Str
	}
	return m
}

// pipelineBackend is a fake that withholds its answer to ID until it has
// read the login command: a proxy that waited for that answer before
// sending the login would never get one, and the backend timeout would
// fail the login. CAPABILITY (asked when the greeting has none) is
// answered at once.
// Every command read is put on got, in order.
func pipelineBackend(t *testing.T, greeting string, got seen) *fakeBackend {
	return startFake(t, func(fc *fakeConn) {
		fc.send(greeting)
		var held []*wire.Command
		for {
			c := fc.cmd()
			if c == nil {
				return
			}
			got <- c
			switch c.Name {
			case "CAPABILITY":
				// Needed for the login command: answered at once.
				fc.send("* CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN\r\n" + c.Tag + " OK done\r\n")
				continue
			case "ID":
				held = append(held, c)
				continue
			case "LOGIN", "AUTHENTICATE":
			default:
				fc.send(c.Tag + " BAD unexpected\r\n")
				return
			}
			var out strings.Builder
			for _, h := range held {
				out.WriteString("* ID NIL\r\n" + h.Tag + " OK ID done\r\n")
			}
			out.WriteString(c.Tag + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
			fc.send(out.String())
			fc.serveAfterLogin()
			return
		}
	})
}

// TestPipelinedBackendLogin: when the greeting allows it, ID and the login
// command reach the backend before it answers ID, also when the greeting
// has no capabilities and CAPABILITY is asked first. The backend gets ID
// first, then the login.
func TestPipelinedBackendLogin(t *testing.T) {
	const full = "* OK [CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN] ready\r\n"
	cases := []struct {
		name, greeting, login string
		want                  []string // command names the backend reads, in order
	}{
		{"LOGIN quoted", full, "a LOGIN u@x.test pw\r\n", []string{"ID", "LOGIN"}},
		{"LOGIN LITERAL+", full, "a LOGIN u@x.test {4+}\r\np\xe9w\xff\r\n", []string{"ID", "LOGIN"}},
		{"AUTHENTICATE PLAIN SASL-IR",
			"* OK [CAPABILITY IMAP4rev1 ID SASL-IR LOGINDISABLED AUTH=PLAIN] ready\r\n",
			"a AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00u@x.test\x00pw")) + "\r\n",
			[]string{"ID", "AUTHENTICATE"}},
		{"no capabilities in greeting", "* OK ready\r\n", "a LOGIN u@x.test pw\r\n",
			[]string{"CAPABILITY", "ID", "LOGIN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make(seen, 10)
			fb := pipelineBackend(t, tc.greeting, got)
			r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
			p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, BackendTimeout: 5 * time.Second}})
			c := dialRaw(t, p.addr)
			c.send(tc.login)
			if l := c.expectPrefix("a "); l != "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in" {
				t.Fatalf("login: %q", l)
			}
			for _, name := range tc.want {
				if cmd := got.next(t); cmd.Name != name {
					t.Errorf("backend read %s, want %s", cmd.Name, name)
				}
			}
			c.send("b LOGOUT\r\n")
			c.expectPrefix("b OK")
		})
	}
}

// TestBackendIDThenSyncLiteral: without LITERAL+, an 8-bit password needs
// a synchronizing literal, so the proxy waits for the ID's answer before
// LOGIN (else it would take that answer for the literal's refusal).
func TestBackendIDThenSyncLiteral(t *testing.T) {
	got := make(seen, 10)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN] ready\r\n")
		fc.answerIDThenLogin(got, " OK [CAPABILITY IMAP4rev1] Logged in\r\n")
	})
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN u@x.test {3+}\r\np\xffw\r\n")
	if l := c.expectPrefix("a "); l != "a OK [CAPABILITY IMAP4rev1] Logged in" {
		t.Fatalf("login: %q", l)
	}
	if id := got.next(t); id.Name != "ID" {
		t.Fatalf("first command %s, want ID", id.Name)
	}
	login := got.next(t)
	if args, _ := login.AStrings(2); args[1] != "p\xffw" || login.Args[1].NonSync {
		t.Errorf("LOGIN %+v, want a synchronizing literal", login.Args)
	}
}

// TestProxyTTL: the backend's ID carries x-proxy-ttl one below the
// session's budget: DefaultProxyTTL, or the client's own x-proxy-ttl when
// lower (a higher one is ignored); a client arriving with 1 is refused
// without a backend being asked.
func TestProxyTTL(t *testing.T) {
	got := make(seen, 10)
	fb := pipelineBackend(t, "* OK [CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN] ready\r\n", got)
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	for _, tc := range []struct{ id, want string }{
		{"", "4"},
		{`a ID ("x-proxy-ttl" "3")` + "\r\n", "2"},
		{`a ID ("X-Proxy-TTL" "99")` + "\r\n", "4"},
		{`a ID ("x-proxy-ttl" "junk")` + "\r\n", "4"},
	} {
		c := dialRaw(t, p.addr)
		if tc.id != "" {
			c.send(tc.id)
			c.expectPrefix("a OK")
		}
		c.send("b LOGIN u@x.test pw\r\n")
		c.expectPrefix("b OK")
		if f := idFields(t, got.next(t)); f["x-proxy-ttl"] != tc.want {
			t.Errorf("after %q: backend got x-proxy-ttl %q, want %s", tc.id, f["x-proxy-ttl"], tc.want)
		}
		got.next(t) // LOGIN
		c.send("c LOGOUT\r\n")
		c.expectPrefix("c OK")
	}

	c := dialRaw(t, p.addr)
	c.send(`a ID ("x-proxy-ttl" "1")` + "\r\n")
	c.expectPrefix("a OK")
	c.send("b LOGIN u@x.test pw\r\n")
	if l := c.expectPrefix("b "); !strings.HasPrefix(l, "b NO [UNAVAILABLE]") {
		t.Errorf("TTL 1: %q", l)
	}
	select {
	case cmd := <-got:
		t.Errorf("backend was asked despite TTL 1: %s", cmd.Name)
	default:
	}
}

// TestRouteLoop: a route that points back at the proxy itself ends after
// DefaultProxyTTL-1 hops with NO [UNAVAILABLE] for the client, instead of
// looping until connections or time run out.
func TestRouteLoop(t *testing.T) {
	var self atomic.Pointer[route.Backend]
	var lookups atomic.Int32
	r := route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
		lookups.Add(1)
		return route.Route{Backends: []route.Backend{*self.Load()}}, nil
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	b, err := route.ParseBackend("imap://" + p.addr)
	if err != nil {
		t.Fatal(err)
	}
	self.Store(&b)
	c := dialRaw(t, p.addr)
	c.send("a LOGIN u@x.test pw\r\n")
	if l := c.expectPrefix("a "); !strings.HasPrefix(l, "a NO [UNAVAILABLE]") {
		t.Errorf("got %q", l)
	}
	// Hops with TTL 5, 4, 3 and 2 look the route up; the one with 1 refuses.
	if n := lookups.Load(); n != imap.DefaultProxyTTL-1 {
		t.Errorf("%d route lookups, want %d", n, imap.DefaultProxyTTL-1)
	}
	c.send("b LOGOUT\r\n")
	c.expectPrefix("b OK")
}

// TestStartTLSBackendWithoutID: after STARTTLS the capabilities are
// unknown, so the proxy asks CAPABILITY alone: go-imap's server, which
// lacks ID, would say BYE to an ID pipelined behind it. No ID is sent, and
// the login goes on.
func TestStartTLSBackendWithoutID(t *testing.T) {
	pki := newPKI(t)
	be := startBackend(t, map[string]string{"alice@a.test": "apass"}, backendOpts{tls: pki.server})
	r := routes(t, map[string][]string{"alice@a.test": {"imap+starttls://" + be.addr}}) // id on
	p := startProxy(t, &imap.Server{
		Server: gateway.Server{
			Router:             r,
			AllowPlaintextAuth: true,
			BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
		},
	})
	c := dialClient(t, p.addr)
	if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}
