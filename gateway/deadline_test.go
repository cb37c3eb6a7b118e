package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/route"
)

// backendListener is a loopback listener whose connections (never
// answered) close at the test's end.
type backendListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	got   chan net.Conn
	done  chan struct{}
}

func listenBackend(t *testing.T) *backendListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backendListener{Listener: ln, got: make(chan net.Conn, 16), done: make(chan struct{})}
	go b.accept()
	t.Cleanup(func() {
		ln.Close()
		<-b.done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close()
		}
	})
	return b
}

func (b *backendListener) accept() {
	defer close(b.done)
	for {
		c, err := b.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
		b.got <- c
	}
}

func (b *backendListener) backend() route.Backend {
	return route.Backend{Protocol: "toy", Addr: b.Addr().String(), ClientAddr: route.ClientAddrNone}
}

// TestLoginTimeoutBoundsFailover: the login timeout runs from connect to
// login across all of a route's backends. A backend that never greets
// holds the login until then, not for its own BackendTimeout, and the next
// backend is not tried after it: the client gets the temporary failure.
func TestLoginTimeoutBoundsFailover(t *testing.T) {
	silent := listenBackend(t)
	good := toyBackend()
	defer good.Close()
	next := good.Addr().String()
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{
				silent.backend(),
				{Protocol: "toy", Addr: next, ClientAddr: route.ClientAddrNone},
			}}, nil
		}),
		AllowPlaintextAuth: true,
		FailureDelay:       -1,
		LoginTimeout:       300 * time.Millisecond,
		BackendTimeout:     time.Hour,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c, br := greeted(t, serveTest(t, srv), 20*time.Second)
	got := exchange(t, c, br, "LOGIN alice@a.test secret")
	if want := "-ERR " + gateway.TextUnavailable; got != want {
		t.Errorf("LOGIN past the login timeout: %q, want %q", got, want)
	}
	select {
	case <-silent.got:
	default:
		t.Error("the first backend was never dialed")
	}
	// Had the good backend been dialed, its connection would be queued by
	// now: the login waited for it before answering.
	good.(*net.TCPListener).SetDeadline(time.Now())
	if gc, err := good.Accept(); err == nil {
		gc.Close()
		t.Error("the second backend was dialed after the login timeout passed")
	} else if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("accept on the second backend: %v", err)
	}
}

// TestKickDuringBackendLogin: a move of the user kicks its lease while the
// gateway is still in the dialogue with the old member. The dialogue ends
// at once: the member never gets the user's LOGIN, and the client gets the
// temporary failure.
func TestKickDuringBackendLogin(t *testing.T) {
	member := listenBackend(t)
	pools := &testPools{backend: member.backend()}
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{{Pool: "p"}}}, nil
		}),
		Pools:              pools,
		AllowPlaintextAuth: true,
		FailureDelay:       -1,
		BackendTimeout:     time.Hour,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c, br := greeted(t, serveTest(t, srv), 20*time.Second)
	if _, err := io.WriteString(c, "LOGIN alice@a.test secret\r\n"); err != nil {
		t.Fatal(err)
	}
	var bc net.Conn
	select {
	case bc = <-member.got:
	case <-time.After(20 * time.Second):
		t.Fatal("the member was never dialed")
	}
	// The member has not greeted yet when the move kicks the user; its
	// greeting comes right after.
	l := pools.lease(t)
	l.kick()
	bc.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(bc, "+OK backend\r\n")
	answer, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := "-ERR " + gateway.TextUnavailable + "\r\n"; answer != want {
		t.Errorf("client got %q, want %q", answer, want)
	}
	// The gateway dropped the member's connection without a LOGIN.
	rest, _ := io.ReadAll(bufio.NewReader(bc))
	if strings.Contains(string(rest), "LOGIN") {
		t.Errorf("the old member got %q after the kick", rest)
	}
	l.waitEnded(t)
	if starts, ends := l.counts(); starts != 0 || ends != 1 {
		t.Errorf("%d starts, %d ends; want 0, 1", starts, ends)
	}
}

// TestRouteLookupBoundedByLoginTimeout: a route source that does not
// answer holds the login until the login timeout, not for the longer
// BackendTimeout: its lookup's context ends at the login deadline, and the
// client gets the temporary failure.
func TestRouteLookupBoundedByLoginTimeout(t *testing.T) {
	const loginTimeout = time.Second // room for a loaded machine to read LOGIN before it
	release := make(chan struct{})
	defer close(release)
	deadlines := make(chan time.Time, 1)
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(ctx context.Context, _ route.Request) (route.Route, error) {
			dl, _ := ctx.Deadline()
			deadlines <- dl
			select {
			case <-ctx.Done():
				return route.Route{}, ctx.Err()
			case <-release:
				return route.Route{}, errors.New("the test ended first")
			}
		}),
		AllowPlaintextAuth: true,
		FailureDelay:       -1,
		LoginTimeout:       loginTimeout,
		BackendTimeout:     time.Hour,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c, br := greeted(t, serveTest(t, srv), 10*time.Second)
	greetedAt := time.Now() // after the connect, so past the session's start
	got := exchange(t, c, br, "LOGIN alice@a.test secret")
	if want := "-ERR " + gateway.TextUnavailable; got != want {
		t.Errorf("LOGIN whose route lookup outlasts the login timeout: %q, want %q", got, want)
	}
	if dl := <-deadlines; dl.IsZero() || dl.After(greetedAt.Add(loginTimeout)) {
		t.Errorf("the route lookup's deadline is %v, past the login deadline (at the latest %v)", dl, greetedAt.Add(loginTimeout))
	}
}

// TestPenaltyWaitBoundedByLoginTimeout: a penalised address's delay before
// its next login is cut at the login deadline. The login is then answered
// with the temporary failure (no route looked up, no password tried),
// instead of holding the session up to the penalty's maximum.
func TestPenaltyWaitBoundedByLoginTimeout(t *testing.T) {
	pen := &limit.Penalty{Base: time.Hour, Max: time.Hour}
	pen.Fail(context.Background(), netip.MustParseAddr("127.0.0.1"))
	looked := make(chan struct{}, 1)
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			looked <- struct{}{}
			return route.Route{}, route.ErrNotFound
		}),
		Penalty:            pen,
		AllowPlaintextAuth: true,
		FailureDelay:       -1,
		LoginTimeout:       time.Second,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	c, br := greeted(t, serveTest(t, srv), 10*time.Second)
	got := exchange(t, c, br, "LOGIN alice@a.test secret")
	if want := "-ERR " + gateway.TextUnavailable; got != want {
		t.Errorf("LOGIN from a penalised address past the login timeout: %q, want %q", got, want)
	}
	select {
	case <-looked:
		t.Error("the route was looked up after the login timeout passed")
	default:
	}
}
