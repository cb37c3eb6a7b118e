package gateway_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
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
	addr, served := serveLocal(t, srv)
	var clients []*bufio.Reader
	for range 3 {
		c, br := greeted(t, addr, 20*time.Second)
		pipedToy(t, c, br)
		clients = append(clients, br)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srv.Shutdown(ctx) // its error says whether the last closes beat the deadline: timing, not checked
	<-served
	for i, br := range clients {
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "-BYE "+gateway.TextShutdown+"\r\n" {
			t.Errorf("client %d read %q, %v; want the farewell then EOF", i, rest, err)
		}
	}
	if !strings.Contains(logs.String(), "closing the sessions left, spread") || !strings.Contains(logs.String(), "sessions=3") {
		t.Errorf("log:\n%s", logs.String())
	}
}
