package sql

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/route"
)

// TestUnverifiedTLSRefused: a URL whose TLS would take any certificate
// (no sslmode, which is libpq's prefer; allow; require) is refused at
// load, so that the password never goes to whoever answers; verify-full
// and an explicit disable are taken.
func TestUnverifiedTLSRefused(t *testing.T) {
	const q = "SELECT host FROM routes WHERE account = $1"
	for _, mode := range []string{"", "?sslmode=prefer", "?sslmode=allow", "?sslmode=require"} {
		s, err := New(context.Background(), Config{URL: "postgres://pipegate@db.example/mail" + mode, Query: q})
		if err == nil {
			s.Close()
			t.Errorf("%q: taken", mode)
		} else if !strings.Contains(err.Error(), "url: ") || !strings.Contains(err.Error(), "sslmode=verify-full") {
			t.Errorf("%q: %v, want the url named and verify-full suggested", mode, err)
		}
	}
	for _, mode := range []string{"?sslmode=verify-full", "?sslmode=disable", "host=/run/postgresql dbname=mail"} {
		url := "postgres://pipegate@db.example/mail" + mode
		if !strings.HasPrefix(mode, "?") {
			url = mode
		}
		s, err := New(context.Background(), Config{URL: url, Query: q})
		if err != nil {
			t.Errorf("%q: %v", url, err)
			continue
		}
		s.Close()
	}
}

// TestQueryErrorReported: an error the database raises while running the
// query (division by zero) is the error reported, not "no backend or host
// column".
func TestQueryErrorReported(t *testing.T) {
	s := newSource(t, "SELECT host FROM routes WHERE account = $1 AND 1/(length($1)-length($1)) = 1")
	_, err := lookup(t, s, route.Request{Protocol: "imap", Account: "alice@a.test"})
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("err = %v; want the database's error (division by zero)", err)
	}
}

// TestAnswerBounded: an answer of more rows than route.MaxBackends is an
// error, not a route of thousands of backends.
func TestAnswerBounded(t *testing.T) {
	s := newSource(t, "SELECT 'imap://127.0.0.1:1' AS backend FROM generate_series(1, 100000) WHERE $1 <> ''")
	if rt, err := lookup(t, s, route.Request{Protocol: "imap", Account: "alice@a.test"}); err == nil || !strings.Contains(err.Error(), "more than 64 rows") {
		t.Fatalf("%d backends, %v; want an error", len(rt.Backends), err)
	}
}

// TestZonedClientIP: a client on a link-local address with a zone
// (fe80::1%eth0) is given to @client_ip without it, which inet takes.
func TestZonedClientIP(t *testing.T) {
	s := newSource(t, `SELECT 'imap://127.0.0.1:19932' AS backend WHERE @domain <> '' AND 'fe80::/10'::inet >> @client_ip::inet`)
	rt, err := lookup(t, s, route.Request{Protocol: "imap", Account: "x@b.test", ClientAddr: netip.MustParseAddrPort("[fe80::1%eth0]:5000")})
	if err != nil || len(rt.Backends) != 1 {
		t.Fatalf("client fe80::1%%eth0: %+v, %v", rt, err)
	}
}

// TestRestartRetried: after the database restarted, the pool's idle
// connection is dead (57P01 terminating connection); the lookup is tried
// once more on a fresh connection and succeeds.
func TestRestartRetried(t *testing.T) {
	s := newSource(t, "SELECT host, port FROM routes WHERE account = $1")
	req := route.Request{Account: "alice@a.test"}
	if _, err := lookup(t, s, req); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := lookup(t, s, req); err != nil {
		t.Fatalf("first lookup after a restart: %v", err)
	}
}
