package authhttp

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/route"
)

// TestURLPasswordNotInErrors: the service's URL may carry Basic
// credentials (http://user:password@host/auth; Go's client sends them).
// A lookup while the service is down does not put that password in its
// error, which the gateway logs on every failed login.
func TestURLPasswordNotInErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down
	s, err := New(Config{URL: "http://pipegate:S3CRET-pw@" + addr + "/auth"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
	if err == nil || strings.Contains(err.Error(), "S3CRET-pw") {
		t.Fatalf("err = %v; want an error without the URL's password", err)
	}
}

// TestURLPasswordNotInConfigErrors: the same for New's own errors.
func TestURLPasswordNotInConfigErrors(t *testing.T) {
	for _, u := range []string{"ftp://pipegate:S3CRET-pw@127.0.0.1/auth", "http://pipegate:S3CRET-pw@127.0.0.1:bad/auth"} {
		_, err := New(Config{URL: u})
		if err == nil || strings.Contains(err.Error(), "S3CRET-pw") {
			t.Errorf("%s: err = %v; want an error without the URL's password", u, err)
		}
	}
}

// TestConflictingAuthStatus: an answer with two Auth-Status headers, "OK"
// and a refusal, is an error (the login is unavailable), never a route:
// nginx too lets a login through only when every Auth-Status says OK.
func TestConflictingAuthStatus(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})
	rec.set(0, "Auth-Status", "OK", "Auth-Status", "Invalid login or password",
		"Auth-Server", "127.0.0.1", "Auth-Port", "143")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
	if err == nil {
		t.Fatalf("two Auth-Status values (OK, refusal) gave route %v; want an error or a denial", rt.Backends)
	}
}

// TestAnswerBounded: an answer whose X-Pipegate-Backend lists 100 000
// URLs (1.9 MB of headers) is an error, not a route of 100 000 backends,
// and so is one of 65 (route.MaxBackends is 64).
func TestAnswerBounded(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})
	for _, n := range []int{100000, 65} {
		rec.set(0, "Auth-Status", "OK", "X-Pipegate-Backend", strings.Repeat("imap://127.0.0.1:1 ", n))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rt, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
		cancel()
		if err == nil {
			t.Errorf("%d backends answered: a route of %d; want an error", n, len(rt.Backends))
		}
	}
	rec.set(0, "Auth-Status", "OK", "X-Pipegate-Backend", strings.Repeat("imap://127.0.0.1:1 ", 64))
	if rt, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test"}); err != nil || len(rt.Backends) != 64 {
		t.Errorf("64 backends: %d, %v", len(rt.Backends), err)
	}
}
