package gateway_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/pipegate/pipegate/gateway"
)

// TestServeAfterShutdownClosesListener: Serve called once Shutdown
// has begun (a daemon stopped right after start, whose serving goroutine
// comes second) returns ErrServerClosed and closes the listener it
// was given, as net/http's Server.Serve does, rather than leave
// a descriptor and a bound port nobody closes.
func TestServeAfterShutdownClosesListener(t *testing.T) {
	srv := &gateway.Server{Protocol: toy{}}
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
