// Package gatewaytest runs the mail protocols' servers (imap, pop3, sieve,
// submission: each a gateway.Server underneath) in their tests: a test PKI,
// a logger into t.Log, and serving on loopback listeners until the test's
// cleanup shuts the server down; and a check that many sessions leave no
// descriptor open behind them.
//
//	gatewaytest.Defaults(t, &srv.Server)
//	plain := gatewaytest.Listen(t)
//	gatewaytest.Serve(t, srv, gatewaytest.Listener{Listener: plain})
//	gatewaytest.NoFDLeak(t, 4, kinds, func() float64 {
//		return gatewaytest.Gauge(t, reg, "pipegate_pop3_sessions_active")
//	})
package gatewaytest

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// PKI is a CA with a certificate for 127.0.0.1 and localhost.
type PKI struct {
	CA     *tlstest.CA
	Server *tls.Config // for listeners
	Client *tls.Config // trusting the CA, ServerName 127.0.0.1
}

// NewPKI makes a PKI.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca := tlstest.NewCA(t)
	cert := ca.IssueCert(t, "127.0.0.1", "localhost")
	return &PKI{
		CA:     ca,
		Server: &tls.Config{Certificates: []tls.Certificate{cert}},
		Client: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"},
	}
}

// Logger logs to t.Log, so that session lines show with -v or on failure.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// Defaults sets what a test left unset: the Logger (Logger(t)) and the
// failure delay (none: failed logins are answered at once unless a test
// asks for the floor; every failure takes the same path either way).
func Defaults(t testing.TB, g *gateway.Server) {
	if g.Logger == nil {
		g.Logger = Logger(t)
	}
	if g.FailureDelay == 0 {
		g.FailureDelay = -1
	}
}

// Server is what a protocol's server offers.
type Server interface {
	Serve(l net.Listener, implicitTLS bool) error
	Shutdown(ctx context.Context) error
}

// Listener is a listener to serve on, with or without implicit TLS.
type Listener struct {
	net.Listener
	ImplicitTLS bool
}

// Listen listens on a free loopback port.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Serve serves srv on ls until the test's cleanup, which shuts srv down
// and checks that each Serve ended with gateway.ErrServerClosed.
func Serve(t testing.TB, srv Server, ls ...Listener) {
	t.Helper()
	var done []chan struct{}
	for _, l := range ls {
		ch := make(chan struct{})
		done = append(done, ch)
		go serve(t, srv, l, ch)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for _, ch := range done {
			<-ch
		}
	})
}

// serve is the goroutine of one listener.
func serve(t testing.TB, srv Server, l Listener, done chan<- struct{}) {
	defer close(done)
	if err := srv.Serve(l.Listener, l.ImplicitTLS); !errors.Is(err, gateway.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// PeerAs wraps l so that every connection it accepts reports peer as its
// remote address: a client the test cannot make from loopback (a
// link-local IPv6 address with its zone, say).
func PeerAs(l net.Listener, peer net.Addr) net.Listener { return peerAsListener{l, peer} }

type peerAsListener struct {
	net.Listener
	peer net.Addr
}

func (l peerAsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return peerAsConn{c, l.peer}, nil
}

type peerAsConn struct {
	net.Conn
	peer net.Addr
}

func (c peerAsConn) RemoteAddr() net.Addr { return c.peer }
