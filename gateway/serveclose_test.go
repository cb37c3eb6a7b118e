package gateway_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
)

// TestServeAfterShutdownClosesListener: Serve called once Shutdown
// has begun (a daemon stopped right after start, whose serving goroutine
// comes second) returns ErrServerClosed and closes the listener it
// was given, as net/http's Server.Serve does, rather than leave
// a descriptor and a bound port nobody closes.
func TestServeAfterShutdownClosesListener(t *testing.T) {
	srv := &gateway.Server{Protocol: toy{}, Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
		return route.Route{}, route.ErrNotFound
	})}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := srv.Serve(l, false); !errors.Is(err, gateway.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve returned ErrServerClosed and left its listener open (Close = %v)", err)
	}
}

// failingListener's Accept fails for good; it records its Close.
type failingListener struct {
	net.Listener
	closed chan struct{}
}

func (l *failingListener) Accept() (net.Conn, error) {
	return nil, errors.New("accept: the socket is gone")
}

func (l *failingListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return l.Listener.Close()
}

// TestServeAcceptErrorClosesListener: Serve that ends on an accept error
// it cannot retry returns it and closes the listener, which no Shutdown
// will close any more.
func TestServeAcceptErrorClosesListener(t *testing.T) {
	srv := &gateway.Server{Protocol: toy{}}
	defer srv.Shutdown(context.Background())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	l := &failingListener{Listener: inner, closed: make(chan struct{})}
	if err := srv.Serve(l, false); err == nil || errors.Is(err, gateway.ErrServerClosed) {
		t.Fatalf("Serve = %v, want the accept error", err)
	}
	select {
	case <-l.closed:
	default:
		t.Fatal("Serve returned the accept error and left its listener open")
	}
}
