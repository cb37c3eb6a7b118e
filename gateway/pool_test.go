package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/route"
)

// testPools is a gateway.Pools that sends every user to one backend and
// records what the gateway does with the leases.
type testPools struct {
	backend   route.Backend
	assignErr error
	startErr  error

	mu      sync.Mutex
	assigns []string // pool/user/protocol
	leases  []*testLease
}

func (p *testPools) Assign(_ context.Context, pool, user, protocol string) (route.Backend, gateway.Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.assigns = append(p.assigns, pool+"/"+user+"/"+protocol)
	if p.assignErr != nil {
		return route.Backend{}, nil, p.assignErr
	}
	l := &testLease{startErr: p.startErr, ended: make(chan struct{})}
	p.leases = append(p.leases, l)
	return p.backend, l, nil
}

func (p *testPools) lease(t *testing.T) *testLease {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.leases) != 1 {
		t.Fatalf("%d leases, want 1 (assigns %q)", len(p.leases), p.assigns)
	}
	return p.leases[0]
}

type testLease struct {
	startErr error

	mu      sync.Mutex
	starts  int
	ends    int
	ended   chan struct{}
	onKicks []func(error)
	kicked  bool
	cause   error
}

func (l *testLease) Start(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts++
	return l.startErr
}

func (l *testLease) End() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ends++
	if l.ends == 1 {
		close(l.ended)
	}
}

// OnKick is affinity.Lease's: f runs at the kick, or at once after it
// (the gateway registers after the pipe started, the client may be
// faster).
func (l *testLease) OnKick(f func(cause error)) {
	l.mu.Lock()
	if !l.kicked {
		l.onKicks = append(l.onKicks, f)
		l.mu.Unlock()
		return
	}
	cause := l.cause
	l.mu.Unlock()
	f(cause)
}

// kick runs the callbacks of OnKick, as a move does.
func (l *testLease) kick() { l.kickFor(fmt.Errorf("%w: by the test", gateway.ErrMoved)) }

// kickFor runs the callbacks of OnKick with cause.
func (l *testLease) kickFor(cause error) {
	l.mu.Lock()
	fs := l.onKicks
	l.onKicks, l.kicked, l.cause = nil, true, cause
	l.mu.Unlock()
	for _, f := range fs {
		f(cause)
	}
}

func (l *testLease) counts() (starts, ends int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starts, l.ends
}

// waitEnded waits for the lease's End (the session's after-close runs
// after the client's close is seen).
func (l *testLease) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-l.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the lease never ended")
	}
}

// poolGateway serves toy with one route, pool:p, resolved by pools; it
// returns a connected client, past the greeting.
func poolGateway(t *testing.T, pools *testPools, engine ...*pipe.Engine) (net.Conn, *bufio.Reader) {
	t.Helper()
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{{Pool: "p"}}}, nil
		}),
		AllowPlaintextAuth: true,
		FailureDelay:       -1,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if len(engine) > 0 {
		srv.Engine = engine[0]
	}
	if pools != nil { // else: a Server without pools
		pools.backend = route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
		srv.Pools = pools
	}
	return greeted(t, serveTest(t, srv), 10*time.Second)
}

// serveTest serves srv on a loopback listener until the test's end, when
// it shuts srv down; it returns the address.
func serveTest(t *testing.T, srv *gateway.Server) string {
	t.Helper()
	addr, served := serveLocal(t, srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	})
	return addr
}

// serveLocal serves srv on a loopback listener; served gets what Serve
// returns.
func serveLocal(t *testing.T, srv *gateway.Server) (addr string, served <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- srv.Serve(l, false) }()
	return l.Addr().String(), ch
}

// greeted dials addr and reads the greeting; the connection fails after
// timeout (a hung test) and is closed at the test's end.
func greeted(t *testing.T, addr string, timeout time.Duration) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return c, br
}

// pipedToy logs alice in on c and checks that the toy backend answers
// through the pipe.
func pipedToy(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if got := exchange(t, c, br, "LOGIN alice@a.test secret"); got != "+OK logged in" {
		t.Fatalf("login: %q", got)
	}
	if got := exchange(t, c, br, "PING"); got != "+PONG from the backend" {
		t.Fatalf("piped: %q", got)
	}
}

func exchange(t *testing.T, c net.Conn, br *bufio.Reader, line string) string {
	t.Helper()
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		t.Fatal(err)
	}
	l, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("after %q: %v", line, err)
	}
	return strings.TrimRight(l, "\r\n")
}

// TestPoolLease: a pool backend is assigned by the name the backend logs
// in, the lease starts once the backend took the login, and ends once,
// after the piped session.
func TestPoolLease(t *testing.T) {
	pools := &testPools{}
	c, br := poolGateway(t, pools)
	pipedToy(t, c, br)
	l := pools.lease(t)
	if starts, ends := l.counts(); starts != 1 || ends != 0 {
		t.Fatalf("while piping: %d starts, %d ends; want 1, 0", starts, ends)
	}
	if want := []string{"p/alice@a.test/toy"}; strings.Join(pools.assigns, " ") != strings.Join(want, " ") {
		t.Errorf("assigns %q, want %q", pools.assigns, want)
	}
	c.Close()
	l.waitEnded(t)
	if starts, ends := l.counts(); starts != 1 || ends != 1 {
		t.Errorf("after the session: %d starts, %d ends; want 1, 1", starts, ends)
	}
}

// TestPoolRefused: a refused login ends the lease without starting it.
func TestPoolRefused(t *testing.T) {
	pools := &testPools{}
	c, br := poolGateway(t, pools)
	if got := exchange(t, c, br, "LOGIN alice@a.test wrong"); got != "-ERR wrong password" {
		t.Fatalf("login: %q", got)
	}
	l := pools.lease(t)
	l.waitEnded(t)
	if starts, ends := l.counts(); starts != 0 || ends != 1 {
		t.Errorf("%d starts, %d ends; want 0, 1", starts, ends)
	}
}

// TestPoolUnavailable: when the pool cannot assign (the shared store is
// down) or the assignment changed during the login, the client is told
// the server is unavailable: no guess, no session on the member.
func TestPoolUnavailable(t *testing.T) {
	t.Run("assign", func(t *testing.T) {
		pools := &testPools{assignErr: errors.New("redis down")}
		c, br := poolGateway(t, pools)
		if got := exchange(t, c, br, "LOGIN alice@a.test secret"); got != "-ERR "+gateway.TextUnavailable {
			t.Fatalf("login: %q", got)
		}
	})
	t.Run("start", func(t *testing.T) {
		pools := &testPools{startErr: errors.New("moved meanwhile")}
		c, br := poolGateway(t, pools)
		if got := exchange(t, c, br, "LOGIN alice@a.test secret"); got != "-ERR "+gateway.TextUnavailable {
			t.Fatalf("login: %q", got)
		}
		l := pools.lease(t)
		l.waitEnded(t)
		if starts, ends := l.counts(); starts != 1 || ends != 1 {
			t.Errorf("%d starts, %d ends; want 1, 1", starts, ends)
		}
	})
	t.Run("no pools", func(t *testing.T) {
		c, br := poolGateway(t, nil)
		if got := exchange(t, c, br, "LOGIN alice@a.test secret"); got != "-ERR "+gateway.TextUnavailable {
			t.Fatalf("login: %q", got)
		}
	})
}

// Farewell makes toy a gateway.Farewell.
func (toy) Farewell(text string) []byte { return []byte("-BYE " + text + "\r\n") }

// TestPoolKick: a move of the user ends its piped session with the
// protocol's farewell after what the backend had sent, on the Engine's
// loops and on goroutines alike, and the lease ends once; a kick because
// the assignment is lost (the shared store unreachable) says so instead.
func TestPoolKick(t *testing.T) {
	causes := []struct {
		name  string
		cause error
		text  string
	}{
		{"moved", fmt.Errorf("%w: by the test", gateway.ErrMoved), gateway.TextMoved},
		{"lost", errors.New("store unreachable"), gateway.TextLost},
	}
	for _, withEngine := range []bool{false, true} {
		for _, k := range causes {
			t.Run(map[bool]string{false: "goroutines", true: "engine"}[withEngine]+"/"+k.name, func(t *testing.T) {
				pools := &testPools{}
				var engines []*pipe.Engine
				if withEngine {
					eng := &pipe.Engine{}
					t.Cleanup(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						eng.Shutdown(ctx)
					})
					engines = append(engines, eng)
				}
				c, br := poolGateway(t, pools, engines...)
				pipedToy(t, c, br)
				l := pools.lease(t)
				l.kickFor(k.cause)
				rest, err := io.ReadAll(br)
				if err != nil {
					t.Fatalf("after the kick: %v", err)
				}
				if want := "-BYE " + k.text + "\r\n"; string(rest) != want {
					t.Errorf("after the kick the client read %q, want %q then EOF", rest, want)
				}
				l.waitEnded(t)
				if starts, ends := l.counts(); starts != 1 || ends != 1 {
					t.Errorf("%d starts, %d ends; want 1, 1", starts, ends)
				}
			})
		}
	}
}
