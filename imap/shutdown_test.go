package imap_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/pipe"
)

// serveOne runs srv on one plain listener; the returned channel gets
// Serve's error.
func serveOne(t *testing.T, srv *imap.Server) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l, false) }()
	return l.Addr().String(), done
}

func TestShutdownDrains(t *testing.T) {
	for _, engine := range []bool{false, true} {
		t.Run(map[bool]string{false: "goroutines", true: "engine"}[engine], func(t *testing.T) {
			_, _, r := twoBackends(t)
			srv := &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, Logger: gatewaytest.Logger(t)}}
			if engine {
				srv.Engine = &pipe.Engine{}
			}
			addr, served := serveOne(t, srv)
			idle := dialRaw(t, addr)
			in := dialClient(t, addr)
			if err := in.Login("alice@a.test", "apass").Wait(); err != nil {
				t.Fatal(err)
			}
			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				shut <- srv.Shutdown(ctx)
			}()
			if l := idle.line(); l != "* BYE Server shutting down" {
				t.Errorf("idle client got %q", l)
			}
			idle.expectClosed()
			if err := <-served; !errors.Is(err, imap.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
			// The logged-in session goes on until its client is done.
			if _, err := in.Select("INBOX", nil).Wait(); err != nil {
				t.Fatalf("select while draining: %v", err)
			}
			if err := in.Logout().Wait(); err != nil {
				t.Fatal(err)
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}

func TestShutdownForced(t *testing.T) {
	for _, engine := range []bool{false, true} {
		t.Run(map[bool]string{false: "goroutines", true: "engine"}[engine], func(t *testing.T) {
			_, _, r := twoBackends(t)
			srv := &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, Logger: gatewaytest.Logger(t)}}
			if engine {
				srv.Engine = &pipe.Engine{}
			}
			addr, served := serveOne(t, srv)
			in := dialClient(t, addr)
			if err := in.Login("alice@a.test", "apass").Wait(); err != nil {
				t.Fatal(err)
			}
			// The client may read the login's OK before the session is in
			// the pipe, and a forced Shutdown closes what is not; the
			// backend's answer to NOOP comes through the pipe.
			if err := in.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Shutdown: %v, want context.Canceled", err)
			}
			<-served
			if engine {
				// A Server never shuts down the Engine it was handed: its
				// maker stops the sessions left, as cmd/pipegate does.
				if err := srv.Engine.Shutdown(ctx); !errors.Is(err, context.Canceled) {
					t.Errorf("Engine.Shutdown: %v, want context.Canceled", err)
				}
			}
			select {
			case <-in.Closed():
			case <-time.After(20 * time.Second):
				t.Fatal("logged-in client not disconnected")
			}
		})
	}
}

// TestSharedEngine: two Servers on one Engine; shutting one down leaves
// the other's sessions alone.
func TestSharedEngine(t *testing.T) {
	_, _, r := twoBackends(t)
	eng := &pipe.Engine{}
	srvA := &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, Engine: eng, Logger: gatewaytest.Logger(t)}}
	srvB := &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, Engine: eng, Logger: gatewaytest.Logger(t)}}
	addrA, servedA := serveOne(t, srvA)
	addrB, servedB := serveOne(t, srvB)
	a := dialClient(t, addrA)
	b := dialClient(t, addrB)
	for _, c := range []*imapclient.Client{a, b} {
		if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srvA.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-servedA
	if _, err := b.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("B's session after A's shutdown: %v", err)
	}
	// B still takes logins (the Engine was not shut down).
	b2 := dialClient(t, addrB)
	if err := b2.Login("bob@b.test", "bpass").Wait(); err != nil {
		t.Fatal(err)
	}
	b.Logout().Wait()
	b2.Logout().Wait()
	if err := srvB.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-servedB
}

func TestConnLimit(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, Conns: limit.NewConns(0, 1)}})
	first := dialRaw(t, p.addr)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	second := &rawClient{t: t, conn: c, r: newLineReader(c)}
	if l := second.line(); !strings.HasPrefix(l, "* BYE Too many connections") {
		t.Errorf("second connection got %q", l)
	}
	second.expectClosed()
	first.send("a NOOP\r\n")
	first.expectPrefix("a OK")
}

func TestPenaltyAndMetrics(t *testing.T) {
	_, _, r := twoBackends(t)
	reg := prometheus.NewRegistry()
	pen := &limit.Penalty{Base: time.Millisecond, Max: time.Millisecond}
	srv := &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, Penalty: pen, Metrics: imap.NewMetrics(reg)}}
	p := startProxy(t, srv)
	ip := netip.MustParseAddr("127.0.0.1")

	c := dialClient(t, p.addr)
	if err := c.Login("alice@a.test", "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	if d := pen.Delay(context.Background(), ip); d <= 0 {
		t.Errorf("no penalty after a failure")
	}
	if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatal(err)
	}
	if d := pen.Delay(context.Background(), ip); d != 0 {
		t.Errorf("penalty %v after a success", d)
	}
	c2 := dialClient(t, p.addr)
	if err := c2.Login("nobody@nowhere.test", "x").Wait(); err == nil {
		t.Fatal("unknown account accepted")
	}
	got := gather(t, reg)
	for key, want := range map[string]float64{
		"pipegate_imap_sessions_total":       2,
		"pipegate_imap_sessions_active":      2,
		"pipegate_imap_logins_total{ok}":     1,
		"pipegate_imap_logins_total{failed}": 2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
	if got["pipegate_imap_login_duration_seconds_count"] != 3 {
		t.Errorf("latency observations: %v", got)
	}
}

// gather sums metric values by name and result label.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					key += "{" + l.GetValue() + "}"
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] += m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestSetRouter(t *testing.T) {
	a, b, _ := twoBackends(t)
	toA := routes(t, map[string][]string{"alice@a.test": {plainURL(a.addr)}})
	toB := routes(t, map[string][]string{"bob@b.test": {plainURL(b.addr)}})
	srv := &imap.Server{Server: gateway.Server{Router: toA, AllowPlaintextAuth: true}}
	p := startProxy(t, srv)
	c := dialClient(t, p.addr)
	if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.SetRouter(toB)
		srv.SetTLSConfig(nil, nil)
	}()
	<-done
	c2 := dialClient(t, p.addr)
	if err := c2.Login("alice@a.test", "apass").Wait(); err == nil {
		t.Error("old route still used")
	}
	if err := c2.Login("bob@b.test", "bpass").Wait(); err != nil {
		t.Errorf("new route: %v", err)
	}
}

// TestServeConnCancel: cancelling ServeConn's context ends the pre-login
// dialogue with a BYE.
func TestServeConnCancel(t *testing.T) {
	_, _, r := twoBackends(t)
	srv := &imap.Server{Server: gateway.Server{Router: r, Logger: gatewaytest.Logger(t)}}
	cli, pconn := net.Pipe()
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeConn(ctx, pconn, false)
	}()
	c := &rawClient{t: t, conn: cli, r: newLineReader(cli)}
	c.expectPrefix("* OK [CAPABILITY IMAP4rev1")
	c.send("a NOOP\r\n")
	c.expectPrefix("a OK")
	cancel()
	if l := c.line(); l != "* BYE Server shutting down" {
		t.Errorf("got %q", l)
	}
	<-done
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownRacesServe: Shutdown from one goroutine while Serve starts
// in another, as a daemon does when it is stopped at once. Under -race
// this failed while Serve set the embedded gateway.Server's Protocol
// field and Shutdown read it. Serve returns ErrServerClosed either way.
func TestShutdownRacesServe(t *testing.T) {
	_, _, r := twoBackends(t)
	srv := &imap.Server{Server: gateway.Server{Router: r, Engine: &pipe.Engine{}, Logger: gatewaytest.Logger(t)}}
	_, served := serveOne(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, gateway.ErrServerClosed) {
		t.Fatalf("Serve: %v, want ErrServerClosed", err)
	}
}
