package sieve_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/sieve"
)

// testPKI is a CA with a certificate for 127.0.0.1 and localhost.
type testPKI struct {
	ca     *tlstest.CA
	server *tls.Config // for listeners
	client *tls.Config // trusting the CA
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := gatewaytest.NewPKI(t)
	p.Client.ServerName = "localhost"
	return &testPKI{ca: p.CA, server: p.Server, client: p.Client}
}

// startProxy serves srv on a plain loopback listener until the test's
// cleanup, which shuts it down; it returns the listener's address.
func startProxy(t testing.TB, srv *sieve.Server) string {
	t.Helper()
	return serveProxy(t, srv, gatewaytest.Listen(t))
}

// serveProxy serves srv on l (plain) until the test's cleanup.
func serveProxy(t testing.TB, srv *sieve.Server, l net.Listener) string {
	t.Helper()
	gatewaytest.Defaults(t, &srv.Server)
	gatewaytest.Serve(t, srv, gatewaytest.Listener{Listener: l})
	return l.Addr().String()
}

// countingRouter routes every account to backends and counts lookups.
type countingRouter struct {
	backends []route.Backend
	lookups  atomic.Int32
	accounts chan string // the accounts looked up, when not nil
}

func newRouter(t testing.TB, urls ...string) *countingRouter {
	t.Helper()
	r := &countingRouter{accounts: make(chan string, 100)}
	for _, u := range urls {
		b, err := route.ParseBackend(u)
		if err != nil {
			t.Fatal(err)
		}
		r.backends = append(r.backends, b)
	}
	return r
}

func (r *countingRouter) Lookup(_ context.Context, req route.Request) (route.Route, error) {
	r.lookups.Add(1)
	select {
	case r.accounts <- req.Account:
	default:
	}
	if len(r.backends) == 0 || !strings.HasSuffix(req.Account, "@a.test") {
		return route.Route{}, route.ErrNotFound
	}
	return route.Route{Backends: r.backends}, nil
}

// client is a line-level ManageSieve client for the tests.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dial connects from the loopback address src ("" for any) and reads
// the capability greeting, which it returns.
func dial(t *testing.T, src, addr string) (*client, string) {
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
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	return cl, cl.response("OK")
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

var literalEnd = regexp.MustCompile(`\{(\d+)\}\r\n$`)

// response reads lines (and the literals they announce) up to the final
// OK, NO or BYE, fails unless it is want, and returns everything read.
func (c *client) response(want string) string {
	c.t.Helper()
	got, final := c.status()
	if final != want {
		c.t.Fatalf("got\n%s, want %s", got, want)
	}
	return got
}

// status reads lines (and the literals they announce) up to the final
// OK, NO or BYE and returns everything read and which it was.
func (c *client) status() (string, string) {
	c.t.Helper()
	var all strings.Builder
	for range 1000 {
		line := c.line()
		all.WriteString(line)
		if m := literalEnd.FindStringSubmatch(line); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			buf := make([]byte, n)
			if _, err := io.ReadFull(c.r, buf); err != nil {
				c.t.Fatalf("literal: %v", err)
			}
			all.Write(buf)
			continue
		}
		for _, final := range []string{"OK", "NO", "BYE"} {
			if line == final+"\r\n" || strings.HasPrefix(line, final+" ") {
				return all.String(), final
			}
		}
	}
	c.t.Fatalf("response longer than 1000 lines:\n%s", all.String())
	return "", ""
}

// expectClosed reads until EOF and fails if anything but a BYE came.
func (c *client) expectClosed() string {
	c.t.Helper()
	b, err := io.ReadAll(io.LimitReader(c.r, 1<<16))
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("read to EOF: %v (got %q)", err, b)
	}
	return string(b)
}

func (c *client) startTLS(conf *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.c, conf)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("STARTTLS handshake: %v", err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
}
