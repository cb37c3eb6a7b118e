package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/route"
)

// TestKickDuringHandOver: an administrator's kick that meets a binary
// upgrade is neither lost nor miscounted. A kick that comes once the
// session's pipe has left (too late to stop it here) is counted and goes
// along with it: the new process ends the session with the farewell. A
// kick while its state is being sent passes it by, uncounted: it goes on
// in the new process, whose own Kick ends it. A session whose sending
// failed stays here, and a kick ends it here. Each with the old
// process's pipes on the event loops and on goroutines (whose pipe stays
// on the loops when its sending failed).
func TestKickDuringHandOver(t *testing.T) {
	const account = "alice@a.test"
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	newServer := func(log io.Writer, f pipe.Flavour) (*gateway.Server, *pipe.Engine) {
		eng := &pipe.Engine{Flavour: f}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			eng.Shutdown(ctx)
		})
		return &gateway.Server{
			Protocol: toy{},
			Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
				return route.Route{Backends: []route.Backend{be}}, nil
			}),
			Engine: eng, AllowPlaintextAuth: true, FailureDelay: -1,
			Logger: slog.New(slog.NewTextHandler(log, nil)),
		}, eng
	}
	bye := "-BYE " + gateway.TextKicked + "\r\n"
	kickedLine := `reason="kicked: by the administrator"`
	for _, tc := range []struct {
		name string
		// yield sends d from old to new as maild's hand-over does, with a
		// kick somewhere; it returns Kick's count.
		yield func(t *testing.T, old, new *gateway.Server, d *pipe.Detached) (kicked int, err error)
		// where: "new" (the session was adopted), "old" (it stayed).
		where string
		// kickedOnTheWay: the session is to end at its adoption.
		kickedOnTheWay bool
	}{
		{"after the pipe left", func(t *testing.T, old, nw *gateway.Server, d *pipe.Detached) (int, error) {
			n := old.Kick(account)
			st, _ := old.Leaving(d.Tag)
			if !st.Kicked {
				t.Errorf("state %+v: not kicked", st)
			}
			return n, adoptCopy(t, nw, d, st, old)
		}, "new", true},
		{"while its state is sent", func(t *testing.T, old, nw *gateway.Server, d *pipe.Detached) (int, error) {
			st, _ := old.Leaving(d.Tag)
			n := old.Kick(account)
			if st.Kicked {
				t.Errorf("state %+v: kicked", st)
			}
			return n, adoptCopy(t, nw, d, st, old)
		}, "new", false},
		{"when its sending failed", func(t *testing.T, old, _ *gateway.Server, d *pipe.Detached) (int, error) {
			old.Leaving(d.Tag)
			old.Stayed(d.Tag)
			return 0, errors.New("send failed")
		}, "old", false},
	} {
		for _, f := range []pipe.Flavour{pipe.FlavourAuto, pipe.FlavourGoroutines} {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) {
				var oldLog, newLog syncBuffer
				oldSrv, oldEng := newServer(&oldLog, f)
				newSrv, _ := newServer(&newLog, pipe.FlavourAuto)
				addr, served := serveLocal(t, oldSrv)
				c, br := greeted(t, addr, 10*time.Second)
				pipedToy(t, c, br)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := oldSrv.Quiesce(ctx); err != nil {
					t.Fatal(err)
				}
				<-served
				kicked := -1
				_, err := oldEng.DetachAll(ctx, func(d *pipe.Detached) error {
					var err error
					kicked, err = tc.yield(t, oldSrv, newSrv, d)
					return err
				})
				if (err != nil) != (tc.where == "old") {
					t.Fatalf("DetachAll: %v", err)
				}
				if want := map[bool]int{true: 1, false: 0}[tc.kickedOnTheWay]; kicked != want {
					t.Errorf("the kick during the hand-over counted %d sessions, want %d", kicked, want)
				}
				here, log := newSrv, &newLog
				if tc.where == "old" {
					here, log = oldSrv, &oldLog
				}
				if !tc.kickedOnTheWay {
					if got := exchange(t, c, br, "PING"); got != "+PONG from the backend" {
						t.Fatalf("after the hand-over: %q", got)
					}
					if n := here.Kick(account); n != 1 {
						t.Fatalf("Kick in the %s process: %d, want 1", tc.where, n)
					}
				}
				if rest, err := io.ReadAll(br); err != nil || string(rest) != bye {
					t.Errorf("client read %q, %v; want %q then EOF", rest, err, bye)
				}
				if err := here.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				if n := strings.Count(log.String(), kickedLine); n != 1 {
					t.Errorf("%d lines with %s in the %s process's log:\n%s", n, kickedLine, tc.where, log.String())
				}
			})
		}
	}
}

// adoptCopy gives new a copy of d with st, as another process gets it,
// and tells old that the session left.
func adoptCopy(t *testing.T, new *gateway.Server, d *pipe.Detached, st gateway.SessionState, old *gateway.Server) error {
	cp := &pipe.Detached{A: dupFile(t, d.A), B: dupFile(t, d.B), State: bytes.Clone(d.State), Tag: d.Tag}
	if err := new.Adopt(context.Background(), cp, st); err != nil {
		return err
	}
	old.Left(d.Tag)
	return nil
}
