package forward

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// onLoops pipes a connection through srv, which proves Serve is serving,
// and reports whether the event loops accept for it.
func onLoops(t *testing.T, srv *Server, addr string) bool {
	t.Helper()
	roundTrip(t, dial(t, addr), "")
	return loopListening(srv)
}

// loopListening reports whether the event loops accept for srv. Serve
// registers their listener right after Engine.Listen returns: where the
// configuration lets the loops accept, wait for it (bounded).
func loopListening(srv *Server) bool {
	deadline := time.Now().Add(testTimeout)
	for {
		srv.mu.Lock()
		n := len(srv.loopListeners)
		srv.mu.Unlock()
		if n > 0 {
			return true
		}
		if !srv.gen.Load().loops || time.Now().After(deadline) {
			return false
		}
		<-time.After(time.Millisecond)
	}
}

// The loops accept for plain TCP forwards to IP addresses, and only then.
func TestLoopAcceptChosen(t *testing.T) {
	ca := tlstest.NewCA(t)
	up := startUpstream(t, nil, testserver.Greet("up"))
	_, port, _ := net.SplitHostPort(up)
	for _, tt := range []struct {
		name  string
		cfg   Config
		deps  Deps
		loops bool
	}{
		{"plain", Config{Upstreams: []string{up}}, Deps{}, true},
		{"send-proxy", Config{Upstreams: []string{up}, SendProxy: "v1"}, Deps{}, true},
		{"go-accept", Config{Upstreams: []string{up}, GoAccept: true}, Deps{}, false},
		{"host-name", Config{Upstreams: []string{"localhost:" + port}}, Deps{}, false},
		{"tls", Config{Upstreams: []string{up}, TLS: &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}}}, Deps{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr, _, _ := startServerDeps(t, tt.cfg, tt.deps)
			if tt.cfg.TLS != nil {
				c := tls.Client(dial(t, addr), &tls.Config{ServerName: "127.0.0.1", RootCAs: ca.Pool()})
				if got := roundTrip(t, c, ""); got != "up" {
					t.Fatalf("got %q", got)
				}
			}
			if got := onLoops(t, srv, addr); got != tt.loops {
				t.Fatalf("loops accept: %v, want %v", got, tt.loops)
			}
		})
	}
}

// After a reload to a configuration the loops cannot set up alone (TLS
// termination), they hand each connection to the Go path; back to plain,
// they set them up themselves again.
func TestLoopAcceptReloadToTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	up := startUpstream(t, nil, testserver.Echo)
	srv, addr, rec, _ := startServer(t, Config{Name: "rt", Upstreams: []string{up}})
	if !onLoops(t, srv, addr) {
		t.Fatal("the loops do not accept for a plain forward")
	}
	cfg := srv.Config()
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}}
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	c := tls.Client(dial(t, addr), &tls.Config{ServerName: "127.0.0.1", RootCAs: ca.Pool()})
	if got := roundTrip(t, c, "over tls"); got != "over tls" {
		t.Fatalf("TLS after reload: got %q", got)
	}
	c.Close()
	cfg.TLS = nil
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, dial(t, addr), "plain again"); got != "plain again" {
		t.Fatalf("plain after reload: got %q", got)
	}
	for i := 1; i <= 3; i++ {
		if r := rec.wait(t, "connection closed", i); r["upstream"] != up {
			t.Errorf("line %d: %v", i, r)
		}
	}
}

func TestForwardSendProxy(t *testing.T) { bothAcceptPaths(t, testForwardSendProxy) }

// The PROXY header sent upstream names the client and the address it
// connected to, and goes again to the upstream tried after a failure.
func testForwardSendProxy(t *testing.T, startServer serverStarter) {
	up := startUpstream(t, nil, proxyEcho)
	for _, v := range []string{"v1", "v2"} {
		_, addr, _, _ := startServer(t, Config{Upstreams: []string{closedPort(t), up}, SendProxy: v})
		c := dial(t, addr)
		if got := roundTrip(t, c, ""); got != c.LocalAddr().String() {
			t.Fatalf("%s: upstream saw %q, want %s", v, got, c.LocalAddr())
		}
	}
}

func TestForwardDialTimeout(t *testing.T) { bothAcceptPaths(t, testForwardDialTimeout) }

// An upstream whose accept queue is full never answers the SYN: after
// DialTimeout the next upstream gets the connection.
func testForwardDialTimeout(t *testing.T, startServer serverStarter) {
	full := testserver.FullListener(t)
	up := startUpstream(t, nil, testserver.Echo)
	_, addr, rec, m := startServer(t, Config{Name: "dt", Upstreams: []string{full.String(), up}, DialTimeout: 200 * time.Millisecond})
	if got := roundTrip(t, dial(t, addr), "late"); got != "late" {
		t.Fatalf("got %q", got)
	}
	if r := rec.wait(t, "connection closed", 1); r["upstream"] != up {
		t.Errorf("log: %v", r)
	}
	if got := metricValue(t, m.dialErrs.WithLabelValues("dt", full.String())); got != 1 {
		t.Errorf("dial errors = %v, want 1", got)
	}
}

// A Shutdown whose deadline passes while a connection waits for its
// upstream to answer logs that connection as refused for "shutdown".
func TestLoopAcceptShutdownWhileConnecting(t *testing.T) {
	full := testserver.FullListener(t)
	srv, addr, rec, _ := startServer(t, Config{Upstreams: []string{full.String()}, DialTimeout: time.Hour})
	if !loopListening(srv) {
		t.Skip("the loops do not accept on this system")
	}
	c := dial(t, addr)
	deadline := time.Now().Add(testTimeout)
	for srv.gen.Load().engine.Stats().Open == 0 { // accepted, connecting
		if time.Now().After(deadline) {
			t.Fatal("the connection was never accepted")
		}
		<-time.After(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv.Shutdown(ctx)
	refused(t, c, "")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "shutdown" {
		t.Errorf("log: %v", r)
	}
}
