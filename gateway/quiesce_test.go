package gateway_test

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
)

// lateListener hands out its first connection only once it is closed: the
// race of a connection the kernel gave the old process just as an upgrade
// closed its listeners (Quiesce).
type lateListener struct {
	net.Listener
	once      sync.Once
	closed    chan struct{}
	waitOnce  sync.Once
	accepting chan struct{} // closed once Serve calls Accept: it is serving
}

func (l *lateListener) Accept() (net.Conn, error) {
	l.waitOnce.Do(func() { close(l.accepting) })
	<-l.closed
	return l.Listener.Accept()
}

func (l *lateListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// TestQuiesceServesLateAccept: a connection accepted as Quiesce closes the
// listener is served to its login, and Quiesce waits for it, rather than
// being closed unread (its client would see a reset).
func TestQuiesceServesLateAccept(t *testing.T) {
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{be}}, nil
		}),
		AllowPlaintextAuth: true, FailureDelay: -1,
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	l := &lateListener{Listener: inner, closed: make(chan struct{}), accepting: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l, false) }()
	<-l.accepting                                    // a Quiesce before Serve began would refuse Serve, and nobody would accept
	c, err := net.Dial("tcp", inner.Addr().String()) // in the backlog, not accepted yet
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	quiesced := make(chan error, 1)
	go func() { quiesced <- srv.Quiesce(ctx) }()
	br := bufio.NewReader(c)
	if greeting, err := br.ReadString('\n'); err != nil {
		t.Fatalf("greeting of the connection accepted during Quiesce: %q, %v", greeting, err)
	}
	if got := exchange(t, c, br, "LOGIN alice@a.test secret"); got != "+OK logged in" {
		t.Fatalf("login: %q", got)
	}
	if err := <-quiesced; err != nil {
		t.Fatalf("Quiesce: %v", err)
	}
	if err := <-served; err == nil {
		t.Fatal("Serve returned nil after Quiesce")
	}
	if got := exchange(t, c, br, "PING"); got != "+PONG from the backend" {
		t.Fatalf("piped: %q", got)
	}
	c.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
