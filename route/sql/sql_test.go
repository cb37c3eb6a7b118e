package sql

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/route/internal/routetest"
)

var (
	srv     *realserver.Postgres
	srvErr  error
	seedErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipegate-route-sql-")
	if err != nil {
		panic(err)
	}
	srv, srvErr = realserver.StartPostgres(dir)
	if srvErr == nil {
		seedErr = seed()
	}
	realserver.RunTests(m, func() {
		if srv != nil {
			srv.Stop()
		}
	}, func() { os.RemoveAll(dir) })
}

func seed() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, srv.ConnURL)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, `
CREATE TABLE routes (account text PRIMARY KEY, host text, port int, tls text, server_name text, login text);
INSERT INTO routes VALUES
  ('alice@a.test', '127.0.0.1', 14301, NULL, NULL, NULL),
  ('bob@a.test', 'mail.a.test', NULL, 'tls', 'imap.a.test', 'bob'),
  ('carol@a.test', '127.0.0.1', 10143, 'starttls', NULL, 'carol.c'),
  ('nohost@a.test', NULL, NULL, NULL, NULL, NULL),
  ('badtls@a.test', 'h', NULL, 'maybe', NULL, NULL),
  ('badport@a.test', 'h', 0, NULL, NULL, NULL);
CREATE TABLE backends (account text, prio int, url text);
INSERT INTO backends VALUES
  ('dave@b.test', 2, 'imaps://127.0.0.1:9932?server_name=m.b.test'),
  ('dave@b.test', 1, 'imaps://127.0.0.1:9931'),
  ('erin@b.test', 1, 'imap://127.0.0.1:1 imap://127.0.0.1:2'),
  ('bad@b.test', 1, 'gopher://x:1');
CREATE TABLE domains (domain text, url text, network cidr);
INSERT INTO domains VALUES
  ('b.test', 'imap://127.0.0.1:19932', NULL),
  ('b.test', 'imap://127.0.0.1:19999', '10.0.0.0/8');
`)
	return err
}

func newSource(t testing.TB, query string) *Source {
	t.Helper()
	realserver.Need(t, srvErr)
	if seedErr != nil {
		t.Fatalf("seed the database: %v", seedErr)
	}
	s, err := New(context.Background(), Config{URL: srv.ConnURL, Query: query, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func lookup(t *testing.T, s *Source, req route.Request) (route.Route, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Lookup(ctx, req)
}

type lookupCase struct{ account, client, want, login, err string }

func runCases(t *testing.T, s *Source, cases []lookupCase) {
	t.Helper()
	for _, tt := range cases {
		req := route.Request{Protocol: "imap", Account: tt.account}
		if tt.client != "" {
			req.ClientAddr = netip.MustParseAddrPort(tt.client)
		}
		rt, err := lookup(t, s, req)
		routetest.Check(t, routetest.Want{Account: tt.account, Backends: tt.want, Login: tt.login, Err: tt.err}, rt, err)
	}
}

func TestHostColumns(t *testing.T) {
	s := newSource(t, "SELECT host, port, tls, server_name, login FROM routes WHERE account = lower($1)")
	runCases(t, s, []lookupCase{
		{account: "alice@a.test", want: "imap://127.0.0.1:14301"},
		{account: "Alice@A.test", want: "imap://127.0.0.1:14301"},
		{account: "bob@a.test", want: "imaps://mail.a.test:993?server_name=imap.a.test", login: "bob"},
		{account: "carol@a.test", want: "imap+starttls://127.0.0.1:10143", login: "carol.c"},
		{account: "nobody@a.test", err: "not found"},
		{account: "nohost@a.test", err: "not found"},
		{account: "badtls@a.test", err: `tls: "maybe"`},
		{account: "badport@a.test", err: `port: "0"`},
		{account: "x' OR '1'='1", err: "not found"}, // a parameter, never SQL
	})
}

func TestBackendColumn(t *testing.T) {
	s := newSource(t, "SELECT url AS backend FROM backends WHERE account = $1 ORDER BY prio")
	runCases(t, s, []lookupCase{
		{account: "dave@b.test", want: "imaps://127.0.0.1:9931 imaps://127.0.0.1:9932?server_name=m.b.test"},
		{account: "erin@b.test", want: "imap://127.0.0.1:1 imap://127.0.0.1:2"},
		{account: "bad@b.test", err: `row 1 from ` + srv.Addr + `/postgres: backend: backend "gopher://x:1"`},
		{account: "nobody@b.test", err: "not found"},
	})
}

// TestNamedParams: domain and client address, most specific network first.
func TestNamedParams(t *testing.T) {
	s := newSource(t, `SELECT url AS backend FROM domains
		WHERE domain = lower(@domain) AND (network IS NULL OR (@client_ip <> '' AND network >> @client_ip::inet))
		ORDER BY masklen(network) DESC NULLS LAST LIMIT 1`)
	runCases(t, s, []lookupCase{
		{account: "x@b.test", client: "127.0.0.1:5000", want: "imap://127.0.0.1:19932"},
		{account: "x@B.test", client: "10.1.2.3:5000", want: "imap://127.0.0.1:19999"},
		{account: "x@b.test", want: "imap://127.0.0.1:19932"},
		{account: "x@c.test", err: "not found"},
	})
}

func TestBadColumns(t *testing.T) {
	for _, tt := range []struct{ query, err string }{
		{"SELECT host, 1 AS weight FROM routes WHERE account = $1", `column "weight": unknown`},
		{"SELECT login FROM routes WHERE account = $1", "no backend or host column"},
		{"SELECT url AS backend, host FROM backends, routes WHERE backends.account = $1", "both present"},
		{"SELECT url AS backend, 1 AS port FROM backends WHERE account = $1", "put them in the URL"},
		{"SELECT host FROM nosuchtable WHERE account = $1", "nosuchtable"},
	} {
		s := newSource(t, tt.query)
		_, err := lookup(t, s, route.Request{Account: "dave@b.test"})
		if err == nil || !strings.Contains(err.Error(), tt.err) || errors.Is(err, route.ErrNotFound) {
			t.Errorf("%s: err = %v, want %q", tt.query, err, tt.err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "postgres://h/db"}, "query: empty"},
		{Config{URL: "postgres://h/db", Query: "SELECT host FROM routes"}, "neither $1"},
		{Config{URL: "postgres://h/db", Query: "SELECT host FROM routes WHERE account = $1 AND domain = @domain"}, "mixes"},
		{Config{URL: "nonsense://", Query: "SELECT 1 WHERE $1 = ''"}, "url"},
	} {
		if _, err := New(ctx, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestNoConnectionsInAdvance: New connects to nothing (pipegate
// check-config makes sources too), even when the URL asks pgx's pool for
// connections made in advance.
func TestNoConnectionsInAdvance(t *testing.T) {
	s, err := New(context.Background(), Config{URL: "postgres://127.0.0.1:1/db?sslmode=disable&pool_min_conns=2&pool_min_idle_conns=2", Query: "SELECT host FROM routes WHERE account = $1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c := s.pool.Config(); c.MinConns != 0 || c.MinIdleConns != 0 {
		t.Fatalf("min conns %d, min idle conns %d: connections made as the source is", c.MinConns, c.MinIdleConns)
	}
}

// TestPassword: the server gets Config.Password, not the URL's, and
// after SetPassword the new one; no error says it.
func TestPassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	done := make(chan struct{})
	go serveRefusingPasswords(ln, got, done)
	defer func() { ln.Close(); <-done }()

	url := "postgres://pipegate:from-url@" + ln.Addr().String() + "/mail?sslmode=disable&connect_timeout=5"
	s, err := New(context.Background(), Config{URL: url, Password: "s3cret-one", Query: "SELECT host FROM routes WHERE account = $1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range []string{"s3cret-one", "s3cret-two"} {
		if want == "s3cret-two" {
			s.SetPassword(want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.Lookup(ctx, route.Request{Account: "alice@a.test"})
		cancel()
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "from-url") {
			t.Fatalf("err = %v, want an authentication error without the password", err)
		}
		if pw := <-got; pw != want {
			t.Fatalf("server got password %q, want %q", pw, want)
		}
	}
}

// serveRefusingPasswords is a PostgreSQL server that asks each connection
// for a cleartext password, sends it to got and refuses it.
func serveRefusingPasswords(ln net.Listener, got chan<- string, done chan<- struct{}) {
	defer close(done)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		be := pgproto3.NewBackend(c, c)
		if _, err := be.ReceiveStartupMessage(); err == nil {
			be.Send(&pgproto3.AuthenticationCleartextPassword{})
			if be.Flush() == nil && be.SetAuthType(pgproto3.AuthTypeCleartextPassword) == nil {
				if msg, err := be.Receive(); err == nil {
					if pm, ok := msg.(*pgproto3.PasswordMessage); ok {
						got <- pm.Password
					}
				}
			}
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
			be.Flush()
		}
		c.Close()
	}
}

// TestDownAndBack: a stopped database is an error, not ErrNotFound; the
// pool reconnects by itself when it is back.
func TestDownAndBack(t *testing.T) {
	s := newSource(t, "SELECT host, port FROM routes WHERE account = $1")
	req := route.Request{Account: "alice@a.test"}
	if _, err := lookup(t, s, req); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := lookup(t, s, req)
	if err == nil || errors.Is(err, route.ErrNotFound) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("database down: err = %v, want a connection error before the deadline", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if rt, err := lookup(t, s, req); err != nil || routetest.Backends(rt) != "imap://127.0.0.1:14301" {
		t.Fatalf("database back: %s %v", routetest.Backends(rt), err)
	}
}

// TestHungDatabase: a database that does not answer fails the lookup at
// its deadline; it works again once the database answers.
func TestHungDatabase(t *testing.T) {
	s := newSource(t, "SELECT host, port FROM routes WHERE account = $1")
	req := route.Request{Account: "alice@a.test"}
	if _, err := lookup(t, s, req); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := s.Lookup(ctx, req)
	cancel()
	if resumeErr := srv.Resume(); resumeErr != nil {
		t.Fatal(resumeErr)
	}
	if err == nil || errors.Is(err, route.ErrNotFound) {
		t.Fatalf("hung database: err = %v, want a timeout", err)
	}
	if _, err := lookup(t, s, req); err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

func BenchmarkLookup(b *testing.B) {
	s := newSource(b, "SELECT host, port, tls, login FROM routes WHERE account = $1")
	req := route.Request{Protocol: "imap", Account: "alice@a.test"}
	routetest.BenchLookup(b, s, req)
}
