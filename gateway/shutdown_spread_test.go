package gateway_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/route"
)

// TestShutdownSpread: sessions still piping near the drain's deadline are
// closed one after the other with the protocol's farewell (not cut at the
// deadline).
func TestShutdownSpread(t *testing.T) {
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	eng := &pipe.Engine{}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eng.Shutdown(ctx)
	})
	var logs syncBuffer
	srv := &gateway.Server{
		Protocol: toy{},
		Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
			return route.Route{Backends: []route.Backend{be}}, nil
		}),
		Engine: eng, AllowPlaintextAuth: true, FailureDelay: -1, DrainSpread: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l, false) }()
	type client struct {
		c  net.Conn
		br *bufio.Reader
	}
	var clients []client
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if got := exchange(t, c, br, "LOGIN alice@a.test secret"); got != "+OK logged in" {
			t.Fatalf("login: %q", got)
		}
		if got := exchange(t, c, br, "PING"); got != "+PONG from the backend" {
			t.Fatalf("piped: %q", got)
		}
		clients = append(clients, client{c, br})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srv.Shutdown(ctx) // its error says whether the last closes beat the deadline: timing, not checked
	<-served
	for i, cl := range clients {
		rest, err := io.ReadAll(cl.br)
		if err != nil || string(rest) != "-BYE "+gateway.TextShutdown+"\r\n" {
			t.Errorf("client %d read %q, %v; want the farewell then EOF", i, rest, err)
		}
	}
	if !strings.Contains(logs.String(), "closing the sessions left, spread") || !strings.Contains(logs.String(), "sessions=3") {
		t.Errorf("log:\n%s", logs.String())
	}
}
