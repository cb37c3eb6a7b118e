package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/gateway/sasl"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/pipe"
	"github.com/pipegate/pipegate/route"
)

// xtoy is toy with "XCLIENT ip:port" from a trusted proxy in front, as
// pop3, sieve and submission take XCLIENT ADDR/PORT (Session.SetClient).
type xtoy struct{ toy }

func (xtoy) Serve(s *gateway.Session) {
	s.Writer().WriteString("+OK toy ready\r\n")
	for s.Flush() == nil {
		line, err := s.Reader().ReadString('\n')
		if err != nil {
			s.End("client read: " + err.Error())
			return
		}
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "XCLIENT" {
			s.SetClient(netip.MustParseAddrPort(f[1]))
			s.Writer().WriteString("+OK updated\r\n")
			continue
		}
		if len(f) != 3 || f[0] != "LOGIN" {
			s.Writer().WriteString("-ERR LOGIN user pass\r\n")
			continue
		}
		b, err := s.Login(sasl.Credentials{Authcid: f[1], Password: f[2]}, "login", time.Now(), toyBackendLogin)
		var e *gateway.Error
		switch {
		case errors.As(err, &e):
			s.Writer().WriteString("-ERR " + e.Text + "\r\n")
		case err != nil:
			return
		default:
			s.Writer().WriteString("+OK logged in\r\n")
			if s.Flush() != nil {
				b.Close()
				return
			}
			s.Handover(b)
			return
		}
	}
}

// TestAdoptCountsProxyAddress: docs/mail.md: the address a trusted proxy
// gives by XCLIENT is the session's client, but "the connection limits
// stay counted against the proxy's own address", also in the process a
// binary upgrade hands the session to (SessionState.Peer).
func TestAdoptCountsProxyAddress(t *testing.T) {
	backend := toyBackend()
	t.Cleanup(func() { backend.Close() })
	be := route.Backend{Protocol: "toy", Addr: backend.Addr().String(), ClientAddr: route.ClientAddrNone}
	newServer := func() (*gateway.Server, *pipe.Engine, *limit.Conns) {
		eng := &pipe.Engine{}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			eng.Shutdown(ctx)
		})
		conns := limit.NewConns(0, 10)
		return &gateway.Server{
			Protocol: xtoy{},
			Router: route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
				return route.Route{Backends: []route.Backend{be}}, nil
			}),
			Engine: eng, AllowPlaintextAuth: true, FailureDelay: -1, Conns: conns,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, eng, conns
	}
	oldSrv, oldEng, oldConns := newServer()
	newSrv, _, newConns := newServer()
	proxy, client := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3")

	addr, served := serveLocal(t, oldSrv)
	c, br := greeted(t, addr, 10*time.Second)
	if got := exchange(t, c, br, "XCLIENT 10.1.2.3:5555"); got != "+OK updated" {
		t.Fatalf("XCLIENT: %q", got)
	}
	pipedToy(t, c, br)
	if oldConns.OpenFrom(proxy) != 1 || oldConns.OpenFrom(client) != 0 {
		t.Fatalf("old process: proxy %d, client %d; want 1, 0", oldConns.OpenFrom(proxy), oldConns.OpenFrom(client))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := oldSrv.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	<-served
	if _, err := oldEng.DetachAll(ctx, func(d *pipe.Detached) error {
		st, _ := oldSrv.Leaving(d.Tag)
		cp := &pipe.Detached{A: dupFile(t, d.A), B: dupFile(t, d.B), State: bytes.Clone(d.State), Tag: d.Tag}
		if err := newSrv.Adopt(ctx, cp, st); err != nil {
			return err
		}
		oldSrv.Left(d.Tag)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p, cl := newConns.OpenFrom(proxy), newConns.OpenFrom(client)
	c.Close()
	if err := oldSrv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := newSrv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if p != 1 || cl != 0 {
		t.Fatalf("after the hand-over the session counts against the proxy %d time(s) and the XCLIENT client %d time(s); want 1 and 0", p, cl)
	}
}
