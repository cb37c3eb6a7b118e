package redis

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

var (
	srv    *realserver.Redis
	srvErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipegate-route-redis-")
	if err != nil {
		panic(err)
	}
	srv, srvErr = realserver.StartRedis(dir)
	realserver.RunTests(m, func() {
		if srv != nil {
			srv.Stop()
		}
	}, func() { os.RemoveAll(dir) })
}

// seed writes key/values with a plain client.
func seed(t testing.TB, kv ...string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer c.Close()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := c.Set(context.Background(), kv[i], kv[i+1], 0).Err(); err != nil {
			t.Fatalf("seed %s: %v", kv[i], err)
		}
	}
}

func newSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	realserver.Need(t, srvErr)
	if cfg.URL == "" {
		cfg.URL = "redis://" + srv.Addr + "/0"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLookup(t *testing.T) {
	s := newSource(t, Config{})
	seed(t,
		"route:alice@a.test", "imap://127.0.0.1:14301",
		"route:bob@a.test", "  imaps://127.0.0.1:9931   imaps://127.0.0.1:9932?server_name=m.a.test\n",
		"route:bad@a.test", "imap://127.0.0.1:1 gopher://x",
		"route:empty@a.test", "  ",
	)
	ctx := context.Background()
	tests := []struct{ account, want, wantErr string }{
		{"alice@a.test", "imap://127.0.0.1:14301", ""},
		{"bob@a.test", "imaps://127.0.0.1:9931 imaps://127.0.0.1:9932?server_name=m.a.test", ""},
		{"Alice@a.test", "", "not found"},
		{"nobody@a.test", "", "not found"},
		{"bad@a.test", "", `key route:bad@a.test on tcp:` + srv.Addr + `: backend "gopher://x": unknown scheme`},
		{"empty@a.test", "", "empty value"},
	}
	for _, tt := range tests {
		rt, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: tt.account})
		routetest.Check(t, routetest.Want{Account: tt.account, Backends: tt.want, Login: "", Err: tt.wantErr}, rt, err)
	}
}

func TestKeyTemplateAndLowercase(t *testing.T) {
	s := newSource(t, Config{Key: "mail:%d:%n", Lowercase: true})
	seed(t, "mail:b.test:carol", "imaps://127.0.0.1:19932")
	rt, err := s.Lookup(context.Background(), route.Request{Account: "Carol@B.test"})
	if err != nil || routetest.Backends(rt) != "imaps://127.0.0.1:19932" {
		t.Fatalf("%v %v", routetest.Backends(rt), err)
	}
}

// TestPassword: Config.Password wins over the URL's, the server checks
// it, SetPassword changes it for new connections, and no error says it.
func TestPassword(t *testing.T) {
	realserver.Need(t, srvErr)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "router", "on", ">s3cret-two", "~route:*", "+get").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(ctx, "ACL", "DELUSER", "router")
	seed(t, "route:pw@a.test", "imap://127.0.0.1:14399")

	s := newSource(t, Config{URL: "redis://router:s3cret-two@" + srv.Addr, Password: "s3cret-one"})
	req := route.Request{Protocol: "imap", Account: "pw@a.test"}
	_, err := s.Lookup(ctx, req)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Password wrong, URL's right: err = %v, want an error (Password wins) without the password", err)
	}
	s.SetPassword("s3cret-two")
	if rt, err := s.Lookup(ctx, req); err != nil || routetest.Backends(rt) != "imap://127.0.0.1:14399" {
		t.Fatalf("password set: %v %v", routetest.Backends(rt), err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "url: empty"},
		{Config{URL: "http://x"}, "url:"},
		{Config{URL: "redis://127.0.0.1:1", Key: "route:%x"}, "key:"},
	} {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v): err = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestNoConnectionsInAdvance: New connects to nothing (pipegate
// check-config makes sources too), even when the URL asks go-redis for
// idle connections made in advance.
func TestNoConnectionsInAdvance(t *testing.T) {
	s, err := New(Config{URL: "redis://127.0.0.1:1/0?min_idle_conns=3"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.client.Options().MinIdleConns; n != 0 {
		t.Fatalf("min_idle_conns %d: connections made as the source is", n)
	}
}

// TestDownAndBack: a stopped server is an error (not ErrNotFound) that comes
// back within the lookup's deadline; once the server is back, lookups work
// again without anything being reset.
func TestDownAndBack(t *testing.T) {
	s := newSource(t, Config{})
	seed(t, "route:alice@a.test", "imap://127.0.0.1:14301")
	look := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := s.Lookup(ctx, route.Request{Account: "alice@a.test"})
		return err
	}
	if err := look(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	err := look()
	if err == nil || errors.Is(err, route.ErrNotFound) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("server down: err = %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), srv.Addr) {
		t.Errorf("error %q does not name the server", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	seed(t, "route:alice@a.test", "imap://127.0.0.1:14301") // no persistence
	if err := look(); err != nil {
		t.Fatalf("server back: %v", err)
	}
}

// TestHungServer: a server that accepts but never answers fails the lookup
// at its context's deadline, and answers again once it is back.
func TestHungServer(t *testing.T) {
	s := newSource(t, Config{})
	seed(t, "route:alice@a.test", "imap://127.0.0.1:14301")
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := s.Lookup(ctx, route.Request{Account: "alice@a.test"})
	cancel()
	if resumeErr := srv.Resume(); resumeErr != nil {
		t.Fatal(resumeErr)
	}
	if err == nil || errors.Is(err, route.ErrNotFound) {
		t.Fatalf("hung server: err = %v, want a timeout", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Lookup(ctx, route.Request{Account: "alice@a.test"}); err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

func BenchmarkLookup(b *testing.B) {
	s := newSource(b, Config{})
	seed(b, "route:alice@a.test", "imap://127.0.0.1:14301")
	req := route.Request{Protocol: "imap", Account: "alice@a.test"}
	routetest.BenchLookup(b, s, req)
}
