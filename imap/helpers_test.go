package imap_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memBackend is a go-imap in-memory IMAP server on loopback.
type memBackend struct {
	addr string
	srv  *imapserver.Server
	mem  *imapmemserver.Server
}

type backendOpts struct {
	tls      *tls.Config // STARTTLS (or implicit TLS with implicit)
	implicit bool
}

// startBackend runs an in-memory server holding users (name: password),
// each with an INBOX.
func startBackend(t testing.TB, users map[string]string, o backendOpts) *memBackend {
	t.Helper()
	mem := imapmemserver.New()
	for name, pass := range users {
		u := imapmemserver.NewUser(name, pass)
		if err := u.Create("INBOX", nil); err != nil {
			t.Fatal(err)
		}
		mem.AddUser(u)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		TLSConfig:    o.tls,
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicit {
		l = tls.NewListener(l, o.tls)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return &memBackend{addr: l.Addr().String(), srv: srv, mem: mem}
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

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

// proxy is an imap.Server on loopback listeners.
type proxy struct {
	srv     *imap.Server
	addr    string // plain (STARTTLS offered when TLSConfig is set)
	tlsAddr string // implicit TLS, when TLSConfig is set
}

// startProxy serves srv on a plain listener and, with a TLS config, an
// implicit-TLS one; Shutdown runs at cleanup.
func startProxy(t testing.TB, srv *imap.Server) *proxy {
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

// routes maps accounts (or "@domain") to backends.
func routes(t testing.TB, m map[string][]string) route.Router {
	t.Helper()
	parsed := map[string][]route.Backend{}
	for k, urls := range m {
		for _, u := range urls {
			b, err := route.ParseBackend(u)
			if err != nil {
				t.Fatal(err)
			}
			parsed[k] = append(parsed[k], b)
		}
	}
	return route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		if bs, ok := parsed[req.Account]; ok {
			return route.Route{Backends: bs}, nil
		}
		if _, dom, ok := strings.Cut(req.Account, "@"); ok {
			if bs, ok := parsed["@"+dom]; ok {
				return route.Route{Backends: bs}, nil
			}
		}
		return route.Route{}, route.ErrNotFound
	})
}

// plainURL is a plain backend URL. ID is on by default, but go-imap's
// server does not advertise ID, so the proxy does not send it.
func plainURL(addr string) string { return "imap://" + addr }

func dialClient(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClient is a line-level client for what imapclient cannot send.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *lineReader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawClient{t: t, conn: c, r: newLineReader(c)}
	rc.expectPrefix("* OK ")
	return rc
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *rawClient) line() string {
	c.t.Helper()
	l, err := c.r.line()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return l
}

// expectPrefix reads lines until one starts with prefix (at most 50) and returns it.
func (c *rawClient) expectPrefix(prefix string) string {
	c.t.Helper()
	for range 50 {
		l := c.line()
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	c.t.Fatalf("no line starting with %q", prefix)
	return ""
}

// expectClosed reads until EOF (at most 50 lines) and returns the lines seen.
func (c *rawClient) expectClosed() []string {
	c.t.Helper()
	var lines []string
	for range 50 {
		l, err := c.r.line()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return lines
			}
			c.t.Fatalf("read: %v", err)
		}
		lines = append(lines, l)
	}
	c.t.Fatalf("connection not closed; got %q", lines)
	return nil
}

type lineReader struct {
	r   io.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader { return &lineReader{r: r} }

func (lr *lineReader) line() (string, error) {
	for {
		if i := strings.Index(string(lr.buf), "\r\n"); i >= 0 {
			l := string(lr.buf[:i])
			lr.buf = lr.buf[i+2:]
			return l, nil
		}
		var b [4096]byte
		n, err := lr.r.Read(b[:])
		lr.buf = append(lr.buf, b[:n]...)
		if err != nil {
			if n > 0 {
				continue
			}
			return "", err
		}
	}
}
