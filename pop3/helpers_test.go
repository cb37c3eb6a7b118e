package pop3_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPKI is a CA with a certificate for 127.0.0.1 and localhost.
type testPKI struct {
	ca     *tlstest.CA
	server *tls.Config // for listeners
	client *tls.Config // trusting the CA
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := gatewaytest.NewPKI(t)
	return &testPKI{ca: p.CA, server: p.Server, client: p.Client}
}

// proxy is a pop3.Server on loopback listeners.
type proxy struct {
	srv     *pop3.Server
	addr    string // plain (STLS offered when TLSConfig is set)
	tlsAddr string // implicit TLS, when TLSConfig is set
}

// startProxy serves srv on a plain listener and, with a TLS config, an
// implicit-TLS one; Shutdown runs at cleanup. Failed logins are answered
// at once unless the test sets FailureDelay: every failure takes the same
// path either way.
func startProxy(t testing.TB, srv *pop3.Server) *proxy {
	t.Helper()
	gatewaytest.Defaults(t, &srv.Server)
	p := &proxy{srv: srv}
	plain := gatewaytest.Listen(t)
	ls := []gatewaytest.Listener{{Listener: plain}}
	p.addr = plain.Addr().String()
	if srv.TLSConfig != nil {
		implicit := gatewaytest.Listen(t)
		ls = append(ls, gatewaytest.Listener{Listener: implicit, ImplicitTLS: true})
		p.tlsAddr = implicit.Addr().String()
	}
	gatewaytest.Serve(t, srv, ls...)
	return p
}

// counting is a router of accounts (or "@domain") to backend URLs that
// counts its lookups.
type counting struct {
	lookups atomic.Int32
	last    atomic.Pointer[route.Request]
	routes  map[string][]route.Backend
}

func routes(t testing.TB, m map[string][]string) *counting {
	t.Helper()
	r := &counting{routes: map[string][]route.Backend{}}
	for k, urls := range m {
		for _, u := range urls {
			b, err := route.ParseBackend(u)
			if err != nil {
				t.Fatal(err)
			}
			r.routes[k] = append(r.routes[k], b)
		}
	}
	return r
}

func (r *counting) Lookup(_ context.Context, req route.Request) (route.Route, error) {
	r.lookups.Add(1)
	r.last.Store(&req)
	if bs, ok := r.routes[req.Account]; ok {
		return route.Route{Backends: bs}, nil
	}
	if _, dom, ok := strings.Cut(req.Account, "@"); ok {
		if bs, ok := r.routes["@"+dom]; ok {
			return route.Route{Backends: bs}, nil
		}
	}
	return route.Route{}, route.ErrNotFound
}

// client is a line-level POP3 client.
type client struct {
	t        testing.TB
	conn     net.Conn
	br       *bufio.Reader
	greeting string
}

// dial connects from the loopback address src ("" for any) and reads the
// greeting.
func dial(t testing.TB, src, addr string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	cl := &client{t: t, conn: c, br: bufio.NewReader(c)}
	cl.greeting = cl.expect("+OK ")
	return cl
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads a line and fails unless it starts with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	l := c.line()
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want %q...", l, prefix)
	}
	return l
}

// cmd sends a command line and returns the answer's first line.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.line()
}

// multi sends a command and reads a multi-line answer: its lines, without
// the status line and the final ".", dot-stuffing undone.
func (c *client) multi(line string) []string {
	c.t.Helper()
	c.send(line + "\r\n")
	c.expect("+OK")
	var out []string
	for range 10000 {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
	c.t.Fatalf("%s: no end of the multi-line answer", line)
	return nil
}

// startTLS upgrades the connection after STLS's +OK.
func (c *client) startTLS(conf *tls.Config) {
	c.t.Helper()
	if c.br.Buffered() > 0 {
		c.t.Fatalf("%d bytes after STLS's +OK", c.br.Buffered())
	}
	tc := tls.Client(c.conn, conf)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
}

// expectClosed reads until EOF (at most 50 lines) and returns the lines seen.
func (c *client) expectClosed() []string {
	c.t.Helper()
	var lines []string
	for range 50 {
		l, err := c.br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				if l != "" {
					lines = append(lines, l)
				}
				return lines
			}
			c.t.Fatalf("read: %v", err)
		}
		lines = append(lines, strings.TrimSuffix(l, "\r\n"))
	}
	c.t.Fatalf("connection not closed; got %q", lines)
	return nil
}
