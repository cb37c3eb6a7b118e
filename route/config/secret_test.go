package config

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pipegate/pipegate/route"
)

// TestPasswordFileReload: the source gets password_file's first line,
// reload reads the file again and the next connection uses the new
// password; a file unreadable on reload is an error naming the entry's
// line and field, and the source keeps its password. No error says it.
func TestPasswordFileReload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	done := make(chan struct{})
	go servePasswordRecorder(ln, got, done)
	defer func() { ln.Close(); <-done }()

	dir := t.TempDir()
	pwFile := writeFile(t, dir, "db.pw", "s3cret-one\nnot the password\n")
	c, err := decode(t, `route_sources:
  - type: sql
    url: postgres://pipegate@`+ln.Addr().String()+`/mail?sslmode=disable&connect_timeout=5
    query: SELECT host FROM routes WHERE account = $1
    password_file: db.pw
    cache: false
`)
	if err != nil {
		t.Fatal(err)
	}
	r, reload, closeAll, err := Build(context.Background(), dir, c.RouteSources, c.RouteCache)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	ask := func(want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := r.Lookup(ctx, route.Request{Account: "alice@a.test"}); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("err = %v, want the server's refusal without the password", err)
		}
		if pw := <-got; pw != want {
			t.Fatalf("server got %q, want %q", pw, want)
		}
	}
	ask("s3cret-one")

	writeFile(t, dir, "db.pw", "s3cret-two\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	ask("s3cret-two")

	if err := os.Remove(pwFile); err != nil {
		t.Fatal(err)
	}
	err = reload()
	if want := "route_sources[0] (line 5).password_file: open " + filepath.Join(dir, "db.pw"); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("reload without the file: err = %v, want %q", err, want)
	}
	ask("s3cret-two")
}

// servePasswordRecorder is a PostgreSQL server that asks each connection
// for a cleartext password, sends it to got and refuses it.
func servePasswordRecorder(ln net.Listener, got chan<- string, done chan<- struct{}) {
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
