package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testserver"
)

// spreadWindow is long next to scheduling noise: the pairs of
// TestShutdownSpread are stopped spreadWindow/4 apart.
const spreadWindow = 1200 * time.Millisecond

// TestShutdownSpread: the pairs left near the drain's deadline are
// stopped one after the other (reason=stopped), not all at the deadline
// (reason=shutdown): when the first has closed, another still carries
// bytes.
func TestShutdownSpread(t *testing.T) {
	for _, goAccept := range []bool{true, false} { // false: the event loops accept (the fast path)
		t.Run(map[bool]string{true: "go-accept", false: "loop-accept"}[goAccept], func(t *testing.T) {
			testShutdownSpread(t, goAccept)
		})
	}
}

func testShutdownSpread(t *testing.T, goAccept bool) {
	up := startUpstream(t, nil, testserver.Echo)
	srv, addr, rec, _ := startServer(t, Config{Upstreams: []string{up}, GoAccept: goAccept})
	const n = 3
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = piped(t, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), spreadWindow)
	defer cancel()
	done := make(chan error, 1)
	go shutdownSpreadForTest(srv, ctx, spreadWindow, done)

	rec.wait(t, "connection closed", 1)
	alive := 0
	for _, c := range conns {
		if echoes(c) {
			alive++
		}
	}
	if alive == 0 {
		t.Errorf("when the first pair had closed, no other still carried bytes: all closed at once")
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ShutdownSpread: %v, want an error saying pairs were stopped", err)
	}
	if r := rec.wait(t, "closing the connections left, spread", 1); r["connections"] != "3" {
		t.Errorf("spread log: %v", r)
	}
	for i := 1; i <= n; i++ {
		if r := rec.wait(t, "connection closed", i); r["reason"] != "stopped" {
			t.Errorf("pair %d: %v, want reason=stopped", i, r)
		}
	}
}

// echoes reports whether c still carries a byte there and back.
func echoes(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte("e")); err != nil {
		return false
	}
	_, err := io.ReadFull(c, make([]byte, 1))
	return err == nil
}

func shutdownSpreadForTest(srv *Server, ctx context.Context, spread time.Duration, done chan<- error) {
	done <- srv.ShutdownSpread(ctx, spread)
}
