package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/route"
)

// dupFile duplicates f, as sending it to another process does.
func dupFile(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), f.Name())
}

// TestHandOverSession: a logged-in pool session leaves one Server (the
// old process) for another (the new one) and goes on: the client notices
// nothing, the old side gives back its lease without a log line, the new
// side renews the lease and logs the session once, with the bytes of
// both.
func TestHandOverSession(t *testing.T) {
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	newServer := func(pools *testPools, log io.Writer) (*gateway.Server, *pipe.Engine) {
		eng := &pipe.Engine{}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			eng.Shutdown(ctx)
		})
		pools.backend = be
		return &gateway.Server{
			Protocol: toy{},
			Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
				return route.Route{Backends: []route.Backend{{Pool: "p"}}}, nil
			}),
			Pools: pools, Engine: eng, AllowPlaintextAuth: true, FailureDelay: -1,
			Logger: slog.New(slog.NewTextHandler(log, nil)),
		}, eng
	}
	var oldLog, newLog syncBuffer
	oldPools, newPools := &testPools{}, &testPools{}
	oldSrv, oldEng := newServer(oldPools, &oldLog)
	newSrv, _ := newServer(newPools, &newLog)

	addr, served := serveLocal(t, oldSrv)
	c, br := greeted(t, addr, 10*time.Second)
	pipedToy(t, c, br)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := oldSrv.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err == nil {
		t.Fatal("Serve returned nil after Quiesce")
	}
	moved := 0
	left, err := oldEng.DetachAll(ctx, func(d *pipe.Detached) error {
		st, ok := oldSrv.Leaving(d.Tag)
		if !ok {
			t.Errorf("tag %q is not the server's", d.Tag)
			return nil
		}
		if st.Account != "alice@a.test" || st.Pool != "p" || st.PoolUser != "alice@a.test" || st.Backend != be.Addr {
			t.Errorf("state %+v", st)
		}
		// What the other process gets: copies of the sockets and state.
		cp := &pipe.Detached{A: dupFile(t, d.A), B: dupFile(t, d.B), State: bytes.Clone(d.State), Tag: d.Tag}
		if err := newSrv.Adopt(ctx, cp, st); err != nil {
			return err
		}
		// A second record with the session's ID (a confused or hostile
		// sender) is refused, its sockets closed, nothing taken.
		again := &pipe.Detached{A: dupFile(t, d.A), B: dupFile(t, d.B), State: bytes.Clone(d.State), Tag: d.Tag}
		if err := newSrv.Adopt(ctx, again, st); err == nil || !strings.Contains(err.Error(), "here already") {
			t.Errorf("second Adopt of session %s: %v", st.ID, err)
		}
		if again.A != nil || again.B != nil || again.State != nil {
			t.Errorf("the refused copy was not wiped: %+v", again)
		}
		oldSrv.Left(d.Tag)
		moved++
		return nil
	})
	if err != nil || left != 0 || moved != 1 {
		t.Fatalf("DetachAll: left %d, moved %d, %v", left, moved, err)
	}
	// The old process is done: its Shutdown has nothing to wait for.
	if err := oldSrv.Shutdown(ctx); err != nil {
		t.Fatalf("old Shutdown: %v", err)
	}
	if got := exchange(t, c, br, "PING"); got != "+PONG from the backend" {
		t.Fatalf("after the hand-over: %q", got)
	}
	ol := oldPools.lease(t)
	ol.waitEnded(t)
	nl := newPools.lease(t)
	if starts, ends := nl.counts(); starts != 1 || ends != 0 {
		t.Errorf("new lease: %d starts, %d ends; want 1, 0", starts, ends)
	}
	c.Close()
	nl.waitEnded(t)
	if err := newSrv.Shutdown(ctx); err != nil {
		t.Fatalf("new Shutdown: %v", err)
	}
	if strings.Contains(oldLog.String(), "toy session") {
		t.Errorf("the old process logged the session:\n%s", oldLog.String())
	}
	line := newLog.String()
	if n := strings.Count(line, "toy session"); n != 1 {
		t.Fatalf("the new process logged %d session lines:\n%s", n, line)
	}
	// Both PINGs and both PONGs are counted (the first ones in the old
	// process), besides the login.
	if !strings.Contains(line, "bytes_to_backend=12") || !strings.Contains(line, "bytes_to_client=48") || !strings.Contains(line, "account=alice@a.test") {
		t.Errorf("session line: %s", line)
	}
}
