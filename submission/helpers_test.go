package submission_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/authhttp"
	"github.com/pipegate/pipegate/submission"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPKI is a CA with a certificate for 127.0.0.1 and localhost.
type testPKI struct {
	ca     *tlstest.CA
	server *tls.Config
	client *tls.Config // trusting the CA
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := gatewaytest.NewPKI(t)
	return &testPKI{ca: p.CA, server: p.Server, client: p.Client}
}

// proxy is a submission.Server on loopback listeners.
type proxy struct {
	srv     *submission.Server
	addr    string // plain (STARTTLS offered when TLSConfig is set)
	tlsAddr string // implicit TLS, when TLSConfig is set
}

func startProxy(t testing.TB, srv *submission.Server) *proxy {
	t.Helper()
	gatewaytest.Defaults(t, &srv.Server)
	if srv.Hostname == "" {
		srv.Hostname = "gw.test"
	}
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

// routes maps accounts (or "@domain") to backend URLs; calls counts the
// lookups.
type routes struct {
	mu     sync.Mutex
	m      map[string][]route.Backend
	calls  int
	logins []string
}

func newRoutes(t testing.TB, m map[string][]string) *routes {
	t.Helper()
	r := &routes{m: map[string][]route.Backend{}}
	for k, urls := range m {
		for _, u := range urls {
			b, err := route.ParseBackend(u)
			if err != nil {
				t.Fatal(err)
			}
			r.m[k] = append(r.m[k], b)
		}
	}
	return r
}

func (r *routes) Lookup(_ context.Context, req route.Request) (route.Route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.logins = append(r.logins, req.Protocol+":"+req.Account)
	if bs, ok := r.m[req.Account]; ok {
		return route.Route{Backends: bs}, nil
	}
	if _, dom, ok := strings.Cut(req.Account, "@"); ok {
		if bs, ok := r.m["@"+dom]; ok {
			return route.Route{Backends: bs}, nil
		}
	}
	return route.Route{}, route.ErrNotFound
}

func (r *routes) lookups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// message is what the fake backend received.
type message struct {
	user, from string
	to         []string
	data       string
}

// smtpBackend is a go-smtp server taking AUTH PLAIN for users and keeping
// the messages sent.
type smtpBackend struct {
	addr     string
	messages chan message
}

// startBackend serves users on loopback: plain (STARTTLS when tlsConf is
// set) or, with implicit, TLS from the first byte.
func startBackend(t testing.TB, users map[string]string, tlsConf *tls.Config, implicit bool) *smtpBackend {
	t.Helper()
	b := &smtpBackend{messages: make(chan message, 16)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &backendSession{b: b, users: users}, nil
	}))
	srv.Domain = "backend.test"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = tlsConf
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	var ln net.Listener = tl
	if implicit {
		ln = tls.NewListener(tl, tlsConf)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		tl.closeAll()
		<-done
		srv.Close()
	})
	b.addr = l.Addr().String()
	return b
}

func (b *smtpBackend) wait(t testing.TB) message {
	t.Helper()
	select {
	case m := <-b.messages:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message at the backend")
		return message{}
	}
}

type backendSession struct {
	b     *smtpBackend
	users map[string]string
	user  string
	msg   message
}

func (s *backendSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *backendSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if p, ok := s.users[username]; !ok || p != password || identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *backendSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.msg = message{user: s.user, from: from}
	return nil
}

func (s *backendSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *backendSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = string(b)
	s.b.messages <- s.msg
	return nil
}

func (s *backendSession) Reset()        { s.msg = message{} }
func (s *backendSession) Logout() error { return nil }

// trackingListener closes the connections it accepted at closeAll:
// go-smtp's Close may miss one that is being accepted.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return c, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.Listener.Close()
	for c := range l.conns {
		c.Close()
	}
}

// rawClient is a line-level SMTP client for what smtp clients do not send.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, src, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
	return rc
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// reply reads one (multi-line) reply and returns its lines joined by "\n".
func (c *rawClient) reply() string {
	c.t.Helper()
	var lines []string
	for range 100 {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (after %q)", err, lines)
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
	c.t.Fatalf("reply longer than 100 lines")
	return ""
}

// cmd sends line and fails unless the reply is want (exactly).
func (c *rawClient) cmd(line, want string) {
	c.t.Helper()
	c.send(line + "\r\n")
	if got := c.reply(); got != want {
		c.t.Fatalf("%q: got %q, want %q", line, got, want)
	}
}

// rest reads until EOF and returns what came.
func (c *rawClient) rest() string {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("read until close: %v (got %q)", err, b)
	}
	return string(b)
}

// startTLS upgrades the raw client after the proxy's 220.
func (c *rawClient) startTLS(conf *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.conn, conf)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func plain(authz, user, pass string) string {
	return b64(authz + "\x00" + user + "\x00" + pass)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// nginxAuthService is an nginx-style auth_http service: alice@a.test with
// password secret is sent to backend, anyone else (or another protocol
// than smtp) refused.
func nginxAuthService(t *testing.T, backend string) *authhttp.Source {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Auth-Protocol") != "smtp" || r.Header.Get("Auth-User") != "alice@a.test" || r.Header.Get("Auth-Pass") != "secret" {
			w.Header().Set("Auth-Status", "Invalid login or password")
			return
		}
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("X-Pipegate-Backend", backend)
	}))
	t.Cleanup(srv.Close)
	src, err := authhttp.New(authhttp.Config{URL: srv.URL, PassPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}
