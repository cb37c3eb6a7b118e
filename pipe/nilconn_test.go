package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestNilConn: a nil conn, or a PrefixConn around none, is ErrNilConn on
// every entry point, never a panic. Join, Go and Start close the other
// conn and report it in the Result, afterClose called once; Engine.Enter
// returns it and leaves both conns to the caller (as ErrShuttingDown), and
// the Engine, which counted nothing, still shuts down.
func TestNilConn(t *testing.T) {
	nils := map[string]func() net.Conn{
		"nil":              func() net.Conn { return nil },
		"PrefixConn{nil}":  func() net.Conn { return &PrefixConn{Prefix: []byte("x")} },
		"(*PrefixConn)nil": func() net.Conn { return (*PrefixConn)(nil) },
	}
	// closedByPipe reports whether the pipe closed its end: its peer reads EOF.
	closedByPipe := func(t *testing.T, peer net.Conn) bool {
		t.Helper()
		peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := peer.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	for name, mk := range nils {
		t.Run("Join/"+name, func(t *testing.T) {
			b, peer := socketPair(t, "tcp")
			defer peer.Close()
			res := Join(context.Background(), b, mk(), nil)
			if !errors.Is(res.Err, ErrNilConn) || res.Reason != ReasonError {
				t.Errorf("Join: %v %v, want ErrNilConn", res.Reason, res.Err)
			}
			if !closedByPipe(t, peer) {
				t.Error("Join did not close the other conn")
			}
		})
		t.Run("Start/"+name, func(t *testing.T) {
			b, peer := socketPair(t, "tcp")
			defer peer.Close()
			calls := make(chan Result, 2)
			h := Start(mk(), b, nil, func(r Result) { calls <- r })
			<-h.Done()
			h.Stop([]byte("bye")) // does nothing
			if _, err := h.Detach(context.Background()); !errors.Is(err, ErrNotDetachable) {
				t.Errorf("Detach of a refused pipe: %v, want ErrNotDetachable", err)
			}
			if len(calls) != 1 {
				t.Fatalf("afterClose ran %d times, want 1", len(calls))
			}
			if r := <-calls; !errors.Is(r.Err, ErrNilConn) {
				t.Errorf("Start: %v, want ErrNilConn", r.Err)
			}
			if !closedByPipe(t, peer) {
				t.Error("Start did not close the other conn")
			}
		})
		t.Run("Engine/"+name, func(t *testing.T) {
			var e Engine
			b, peer := socketPair(t, "tcp")
			defer peer.Close()
			defer b.Close()
			called := false
			if err := e.Enter(mk(), b, func(Result) { called = true }); !errors.Is(err, ErrNilConn) {
				t.Errorf("Enter: %v, want ErrNilConn", err)
			}
			if called {
				t.Error("Enter called afterClose for a conn it refused")
			}
			if _, err := b.Write([]byte("x")); err != nil {
				t.Errorf("Enter closed the conn it left to the caller: %v", err)
			}
			if s := e.Stats(); s.Open != 0 || s.Total != 0 {
				t.Errorf("Stats after a refused Enter: %+v", s)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
