package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/internal/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait in these tests; it is never a sleep.
const testTimeout = 10 * time.Second

func testClientTLS() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }

// logRecorder collects log records so tests can wait for a line.
type logRecorder struct {
	mu      sync.Mutex
	changed chan struct{}
	recs    []map[string]string
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return nil
}

// wait returns the n-th (from 1) record with message msg, waiting for it.
func (l *logRecorder) wait(t *testing.T, msg string, n int) map[string]string {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		l.mu.Lock()
		seen := 0
		for _, r := range l.recs {
			if r["msg"] == msg {
				if seen++; seen == n {
					l.mu.Unlock()
					return r
				}
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no log record #%d %q within %v; have %v", n, msg, testTimeout, l.recs)
		}
	}
}

// serverStarter is startServer, or startServer with other Deps.
type serverStarter func(t *testing.T, cfg Config) (*Server, string, *logRecorder, *Metrics)

// bothAcceptPaths runs test with the event loops accepting where they can
// (loopaccept.go) and with Config.GoAccept.
func bothAcceptPaths(t *testing.T, test func(*testing.T, serverStarter)) {
	for _, goAccept := range []bool{false, true} {
		name := "loops"
		if goAccept {
			name = "go"
		}
		t.Run(name, func(t *testing.T) {
			test(t, func(t *testing.T, cfg Config) (*Server, string, *logRecorder, *Metrics) {
				cfg.GoAccept = goAccept
				return startServerDeps(t, cfg, Deps{})
			})
		})
	}
}

// startServer listens on a loopback port and serves cfg (Listen is set here).
func startServer(t *testing.T, cfg Config) (*Server, string, *logRecorder, *Metrics) {
	t.Helper()
	return startServerDeps(t, cfg, Deps{})
}

// startServerDeps is startServer with deps (Log and Metrics are set here).
func startServerDeps(t *testing.T, cfg Config, deps Deps) (*Server, string, *logRecorder, *Metrics) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	srv, ln, rec, m := serveListen(t, cfg, deps, t.Fatal)
	return srv, ln.Addr().String(), rec, m
}

// serveListen serves cfg on cfg.Listen until the test's end (Log and
// Metrics set in deps here); listenFailed reports a listen error (t.Fatal,
// or t.Skip where the address may not exist on the machine).
func serveListen(t *testing.T, cfg Config, deps Deps, listenFailed func(...any)) (*Server, net.Listener, *logRecorder, *Metrics) {
	t.Helper()
	rec := newLogRecorder()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	deps.Log, deps.Metrics = slog.New(rec), m
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(cfg.Listen)
	if err != nil {
		listenFailed(fmt.Sprintf("listen %s: %v", cfg.Listen, err))
	}
	done := make(chan error, 1)
	go serveForTest(srv, ln, done)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln, rec, m
}

func serveForTest(srv *Server, ln net.Listener, done chan<- error) { done <- srv.Serve(ln) }

// startUpstream runs handle for each connection on a loopback listener
// (wrapped in TLS when cfg is set).
func startUpstream(t *testing.T, cfg *tls.Config, handle func(net.Conn)) string {
	t.Helper()
	return testserver.Start(t, cfg, testTimeout, handle)
}

// roundTrip sends msg, half-closes and returns everything read back.
func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// refused sends msg and expects the connection closed (EOF or reset)
// without a byte back.
func refused(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	io.WriteString(c, msg) // may fail: the forwarder may have closed already
	b, err := io.ReadAll(c)
	if len(b) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %q, %v; want the connection closed", b, err)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestForwardPlain(t *testing.T) { bothAcceptPaths(t, testForwardPlain) }

func testForwardPlain(t *testing.T, startServer serverStarter) {
	up := startUpstream(t, nil, testserver.Echo)
	_, addr, rec, m := startServer(t, Config{Name: "plain", Upstreams: []string{up}})
	if got := roundTrip(t, dial(t, addr), "hello"); got != "hello" {
		t.Fatalf("echo = %q", got)
	}
	r := rec.wait(t, "connection closed", 1)
	if r["forward"] != "plain" || r["upstream"] != up || r["bytes_to_upstream"] != "5" || r["bytes_to_client"] != "5" || r["reason"] == "" {
		t.Errorf("log line: %v", r)
	}
	if got := metricValue(t, m.bytes.WithLabelValues("plain", "to_upstream")); got != 5 {
		t.Errorf("bytes metric = %v, want 5", got)
	}
	if got := metricValue(t, m.open.WithLabelValues("plain")); got != 0 {
		t.Errorf("open connections = %v after close, want 0", got)
	}
}

func TestForwardFailover(t *testing.T) { bothAcceptPaths(t, testForwardFailover) }

func testForwardFailover(t *testing.T, startServer serverStarter) {
	down := closedPort(t)
	up := startUpstream(t, nil, testserver.Greet("second"))
	_, addr, rec, m := startServer(t, Config{Name: "fo", Upstreams: []string{down, up}, Backoff: time.Hour, TCPKeepAlive: time.Minute})
	for i := range 2 {
		if got := roundTrip(t, dial(t, addr), ""); got != "second" {
			t.Fatalf("connection %d: got %q", i, got)
		}
		if r := rec.wait(t, "connection closed", i+1); r["upstream"] != up {
			t.Fatalf("connection %d went to %q", i, r["upstream"])
		}
	}
	// The second connection skipped the failing upstream (backing off).
	if got := metricValue(t, m.dialErrs.WithLabelValues("fo", down)); got != 1 {
		t.Errorf("dial errors for %s = %v, want 1", down, got)
	}
}

func TestForwardAllUpstreamsDown(t *testing.T) { bothAcceptPaths(t, testForwardAllUpstreamsDown) }

func testForwardAllUpstreamsDown(t *testing.T, startServer serverStarter) {
	_, addr, rec, m := startServer(t, Config{Name: "down", Upstreams: []string{closedPort(t), closedPort(t)}})
	refused(t, dial(t, addr), "x")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "dial" {
		t.Errorf("log: %v", r)
	}
	if got := metricValue(t, m.refused.WithLabelValues("down", "dial")); got != 1 {
		t.Errorf("refused{dial} = %v", got)
	}
}

func TestForwardSNI(t *testing.T) {
	ca := tlstest.NewCA(t)
	serve := func(name string) string {
		cert := ca.IssueCert(t, name)
		return startUpstream(t, &tls.Config{Certificates: []tls.Certificate{cert}}, testserver.Greet(name))
	}
	a, b, def := serve("a.example"), serve("x.b.example"), serve("default.example")
	_, addr, rec, _ := startServer(t, Config{
		Routes:    []Route{{ServerName: "a.example", Upstreams: []string{a}}, {ServerName: "*.b.example", Upstreams: []string{b}}},
		Upstreams: []string{def},
	})
	for i, name := range []string{"a.example", "x.b.example", "default.example"} {
		c := tls.Client(dial(t, addr), &tls.Config{ServerName: name, RootCAs: ca.Pool()})
		if got := roundTrip(t, c, ""); got != name {
			t.Errorf("SNI %s reached %q", name, got)
		}
		c.Close() // CloseWrite on a tls.Conn sends close_notify but no FIN
		if r := rec.wait(t, "connection closed", i+1); r["sni"] != name {
			t.Errorf("log sni = %q, want %s", r["sni"], name)
		}
	}
}

// Garbage instead of a ClientHello closes that connection only.
func TestForwardSNIGarbage(t *testing.T) {
	up := startUpstream(t, nil, testserver.Greet("up"))
	_, addr, rec, m := startServer(t, Config{Name: "sni", Routes: []Route{{ServerName: "a.example", Upstreams: []string{up}}}})
	refused(t, dial(t, addr), "GET / HTTP/1.0\r\n\r\n")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "client-hello" {
		t.Errorf("log: %v", r)
	}
	// A ClientHello without a matching route (and no default) is refused too.
	c := tls.Client(dial(t, addr), &tls.Config{ServerName: "other.example"})
	c.SetDeadline(time.Now().Add(testTimeout))
	if err := c.Handshake(); err == nil {
		t.Fatal("handshake through a route-less name succeeded")
	}
	if r := rec.wait(t, "connection refused", 2); r["reason"] != "no-route" {
		t.Errorf("log: %v", r)
	}
	if got := metricValue(t, m.refused.WithLabelValues("sni", "client-hello")); got != 1 {
		t.Errorf("refused{client-hello} = %v", got)
	}
}

func TestForwardLimits(t *testing.T) { bothAcceptPaths(t, testForwardLimits) }

func testForwardLimits(t *testing.T, startServer serverStarter) {
	up := startUpstream(t, nil, testserver.Echo)
	_, addr, rec, m := startServer(t, Config{Name: "lim", Upstreams: []string{up}, MaxConns: 1})
	first := dial(t, addr)
	first.SetDeadline(time.Now().Add(testTimeout))
	// A byte echoed proves the first connection is piped (counted).
	if _, err := first.Write([]byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	refused(t, dial(t, addr), "2")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "limit-total" {
		t.Errorf("log: %v", r)
	}
	if got := metricValue(t, m.refused.WithLabelValues("lim", "limit")); got != 1 {
		t.Errorf("refused{limit} = %v", got)
	}
	if got := roundTrip(t, first, "x"); got != "x" {
		t.Fatalf("first connection got %q", got)
	}
	rec.wait(t, "connection closed", 1)
	if got := roundTrip(t, dial(t, addr), "3"); got != "3" {
		t.Fatalf("connection after the first closed got %q", got)
	}
}

// proxyEcho parses a PROXY header and writes back the source address.
func proxyEcho(c net.Conn) {
	h, err := proxyproto.Read(bufio.NewReader(c))
	if err != nil {
		io.WriteString(c, "error: "+err.Error())
		return
	}
	io.WriteString(c, h.SourceAddr.String())
}

func TestForwardAcceptAndSendProxy(t *testing.T) {
	up := startUpstream(t, nil, proxyEcho)
	_, addr, rec, _ := startServer(t, Config{
		Upstreams: []string{up}, SendProxy: "v2",
		AcceptProxy: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if got := roundTrip(t, dial(t, addr), "PROXY TCP4 192.0.2.7 192.0.2.1 4242 443\r\n"); got != "192.0.2.7:4242" {
		t.Fatalf("upstream saw %q, want 192.0.2.7:4242", got)
	}
	if r := rec.wait(t, "connection closed", 1); r["client"] != "192.0.2.7:4242" || !strings.HasPrefix(r["peer"], "127.0.0.1:") {
		t.Errorf("log: %v", r)
	}
	refused(t, dial(t, addr), "GET / HTTP/1.1\r\n\r\n")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "proxy-header" {
		t.Errorf("log: %v", r)
	}
}

func TestForwardReload(t *testing.T) { bothAcceptPaths(t, testForwardReload) }

func testForwardReload(t *testing.T, startServer serverStarter) {
	one := startUpstream(t, nil, testserver.Echo)
	two := startUpstream(t, nil, testserver.Greet("two"))
	srv, addr, _, _ := startServer(t, Config{Upstreams: []string{one}})
	old := dial(t, addr)
	old.SetDeadline(time.Now().Add(testTimeout))
	if _, err := old.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(old, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config()
	cfg.Upstreams = []string{two}
	cfg.IdleTimeout = time.Hour // a new engine for new connections
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, dial(t, addr), ""); got != "two" {
		t.Fatalf("new connection after reload got %q", got)
	}
	if got := roundTrip(t, old, "b"); got != "b" {
		t.Fatalf("connection from before the reload got %q", got)
	}
	bad := cfg
	bad.SendProxy = "v9"
	if err := srv.Reload(bad); err == nil {
		t.Fatal("reload with a bad config: no error")
	}
	if got := roundTrip(t, dial(t, addr), ""); got != "two" {
		t.Fatalf("after a failed reload got %q", got)
	}
}

// piped dials addr and waits for a byte echoed through, which proves the
// connection is piped (and counted against the limits).
func piped(t *testing.T, addr string) net.Conn {
	t.Helper()
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte("p")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("not piped: %v", err)
	}
	return c
}

// Changing the limits on reload keeps counting the connections open.
func TestForwardReloadLimits(t *testing.T) { bothAcceptPaths(t, testForwardReloadLimits) }

func testForwardReloadLimits(t *testing.T, startServer serverStarter) {
	up := startUpstream(t, nil, testserver.Echo)
	srv, addr, rec, _ := startServer(t, Config{Name: "rl", Upstreams: []string{up}, MaxConns: 1})
	piped(t, addr)
	cfg := srv.Config()
	cfg.MaxConns = 2
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	piped(t, addr)
	refused(t, dial(t, addr), "3")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "limit-total" {
		t.Errorf("third connection with max-conns 2: %v", r)
	}
	cfg.MaxConns, cfg.MaxConnsPerIP = 0, 2
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	refused(t, dial(t, addr), "3")
	if r := rec.wait(t, "connection refused", 2); r["reason"] != "limit-per-ip" {
		t.Errorf("third connection with max-conns-per-ip 2: %v", r)
	}
	cfg.MaxConnsPerIP = 0
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	piped(t, addr) // unlimited again
}

func TestShutdownDrains(t *testing.T) { bothAcceptPaths(t, testShutdownDrains) }

func testShutdownDrains(t *testing.T, startServer serverStarter) {
	up := startUpstream(t, nil, testserver.Echo)
	srv, addr, _, _ := startServer(t, Config{Upstreams: []string{up}})
	c := piped(t, addr)
	done := make(chan error, 1)
	go shutdownForTest(srv, context.Background(), done)
	// Not accepting any more (bounded poll: the listener closes asynchronously).
	for i := 0; ; i++ {
		nc, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			break
		}
		nc.Close()
		if i == 1000 {
			t.Fatal("still accepting after Shutdown")
		}
		<-time.After(time.Millisecond)
	}
	// The open connection still works, and Shutdown returns once it ends.
	if got := roundTrip(t, c, "bc"); got != "bc" {
		t.Fatalf("draining connection got %q", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Shutdown did not return after the last connection closed")
	}
}

// signalListener reports each Accept call on calls, before it blocks.
type signalListener struct {
	net.Listener
	calls chan struct{}
}

func (l *signalListener) Accept() (net.Conn, error) {
	select {
	case l.calls <- struct{}{}:
	default:
	}
	return l.Listener.Accept()
}

// A connection still in its PROXY header, TLS handshake or ClientHello when
// Shutdown begins is refused for reason "shutdown" at INFO, not blamed on
// the client.
func TestShutdownDuringHandshake(t *testing.T) {
	ca := tlstest.NewCA(t)
	up := startUpstream(t, nil, testserver.Echo)
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"proxy-header", Config{Upstreams: []string{up}, AcceptProxy: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		{"tls-handshake", Config{Upstreams: []string{up}, TLS: &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}}}},
		{"client-hello", Config{Routes: []Route{{ServerName: "a.example", Upstreams: []string{up}}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Listen = "127.0.0.1:0"
			rec := newLogRecorder()
			srv, err := New(tt.cfg, Deps{Log: slog.New(rec)})
			if err != nil {
				t.Fatal(err)
			}
			inner, err := Listen(tt.cfg.Listen)
			if err != nil {
				t.Fatal(err)
			}
			ln := &signalListener{Listener: inner, calls: make(chan struct{}, 1)}
			done := make(chan error, 1)
			go serveForTest(srv, ln, done)
			<-ln.calls // first Accept
			c := dial(t, inner.Addr().String())
			// The second Accept call begins once the first connection is
			// registered and being set up: it waits for a handshake.
			select {
			case <-ln.calls:
			case <-time.After(testTimeout):
				t.Fatal("connection not accepted")
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
			refused(t, c, "")
			if r := rec.wait(t, "connection refused", 1); r["reason"] != "shutdown" || r["level"] != "INFO" {
				t.Errorf("log: %v", r)
			}
		})
	}
}

func TestShutdownDeadline(t *testing.T) { bothAcceptPaths(t, testShutdownDeadline) }

func testShutdownDeadline(t *testing.T, startServer serverStarter) {
	up := startUpstream(t, nil, testserver.Echo)
	srv, addr, rec, _ := startServer(t, Config{Upstreams: []string{up}})
	c := piped(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown with an expired context: no error")
	}
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("read after forced close: %v", err)
	}
	if r := rec.wait(t, "connection closed", 1); r["reason"] == "eof" {
		t.Errorf("log: %v", r)
	}
}

func shutdownForTest(srv *Server, ctx context.Context, done chan<- error) { done <- srv.Shutdown(ctx) }

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// TestServeReturnsAfterStopAccepting: StopAccepting "closes the server's
// listeners and waits until its accept loops have returned": Serve then
// returns ErrServerClosed on the event loops as on the Go path (on the
// loops it waited for Shutdown).
func TestServeReturnsAfterStopAccepting(t *testing.T) {
	for _, goAccept := range []bool{true, false} {
		t.Run(map[bool]string{true: "go-accept", false: "loops"}[goAccept], func(t *testing.T) {
			up, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			s, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []string{up.Addr().String()}, GoAccept: goAccept}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }()
			// Serve is serving once a connection reaches the upstream.
			c := dial(t, ln.Addr().String())
			uc, err := up.Accept()
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			uc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := s.StopAccepting(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-served:
				if !errors.Is(err, ErrServerClosed) {
					t.Errorf("Serve = %v, want ErrServerClosed", err)
				}
			case <-ctx.Done():
				t.Error("Serve still serving after StopAccepting returned")
			}
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
