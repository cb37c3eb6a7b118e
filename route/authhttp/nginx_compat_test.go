package authhttp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipegate/pipegate/route"
)

// TestAuthStatusWait: "Auth-Status: WAIT" is not a refusal; as nginx does
// (ngx_mail_auth_sleep_handler), the source waits Auth-Wait seconds and
// asks again with the same request, and the client never sees it.
func TestAuthStatusWait(t *testing.T) {
	var asked atomic.Int32
	attempts := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts <- r.Header.Get("Auth-Login-Attempt")
		if asked.Add(1) == 1 {
			w.Header().Set("Auth-Status", "WAIT")
			w.Header().Set("Auth-Wait", "0")
			return
		}
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", "127.0.0.1")
		w.Header().Set("Auth-Port", "143")
	}))
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test", Attempt: 2})
	if err != nil {
		t.Fatalf("Lookup: %v (Auth-Status: WAIT must be asked again, not refused)", err)
	}
	if len(rt.Backends) != 1 || rt.Backends[0].Addr != "127.0.0.1:143" {
		t.Fatalf("route %+v, want the backend of the second answer", rt)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("service asked %d times, want 2", n)
	}
	if a, b := <-attempts, <-attempts; a != "2" || b != "2" {
		t.Errorf("Auth-Login-Attempt %q then %q, want the same attempt twice", a, b)
	}
}

// TestAuthStatusWaitBounded: a service that says WAIT for ever fails the
// lookup (the gateway answers unavailable) after maxWaits+1 requests, and
// a WAIT longer than the login's deadline ends with the deadline.
func TestAuthStatusWaitBounded(t *testing.T) {
	var asked atomic.Int32
	wait := atomic.Value{}
	wait.Store("0")
	answered := make(chan struct{}, 2*maxWaits)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Auth-Status", "WAIT")
		w.Header().Set("Auth-Wait", wait.Load().(string))
		answered <- struct{}{}
	}))
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})
	_, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test"})
	var d *route.Denied
	if err == nil || errors.As(err, &d) || !strings.Contains(err.Error(), "WAIT") {
		t.Fatalf("err = %v, want an error (not a denial) naming WAIT", err)
	}
	if n := asked.Load(); n != maxWaits+1 {
		t.Errorf("asked %d times, want %d", n, maxWaits+1)
	}
	for range maxWaits + 1 {
		<-answered
	}

	wait.Store("3600")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Lookup(ctx, route.Request{Protocol: "imap", Account: "alice@a.test"})
		done <- err
	}()
	<-answered // a WAIT of an hour is on its way: the login ends meanwhile
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the login's end (context.Canceled)", err)
	}
}

// TestErrorCodeByProtocol: nginx sends Auth-Error-Code to SMTP clients
// only, as the reply code; for IMAP, POP3 and ManageSieve an SMTP code
// is dropped (the client gets the protocol's usual failure), and a code
// such as UNAVAILABLE is kept.
func TestErrorCodeByProtocol(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSource(t, Config{URL: srv.URL})
	for _, tt := range []struct{ protocol, code, want string }{
		{"submission", "535 5.7.8", "535 5.7.8"},
		{"imap", "535 5.7.8", ""},
		{"pop3", "454 4.7.0", ""},
		{"sieve", "535 5.7.0", ""},
		{"imap", "UNAVAILABLE", "UNAVAILABLE"},
		{"submission", "", ""},
	} {
		rec.set(0, "Auth-Status", "Invalid login or password", "Auth-Error-Code", tt.code)
		_, err := s.Lookup(context.Background(), route.Request{Protocol: tt.protocol, Account: "alice@a.test"})
		d, ok := errors.AsType[*route.Denied](err)
		if !ok {
			t.Fatalf("%s: err = %v, want a denial", tt.protocol, err)
		}
		if d.Code != tt.want {
			t.Errorf("%s, Auth-Error-Code %q: Denied.Code %q, want %q", tt.protocol, tt.code, d.Code, tt.want)
		}
	}
}

// TestHeaderSpellingAsNginx: Client-IP and Auth-SSL go on the wire as
// nginx writes them, not as Go canonicalises them (Client-Ip, Auth-Ssl):
// auth services that read raw header lines look for nginx's spelling.
func TestHeaderSpellingAsNginx(t *testing.T) {
	got := requestHead(t, route.Request{Attempt: 1, ClientTLS: true})
	for _, want := range []string{"\r\nClient-IP: 192.0.2.7\r\n", "\r\nAuth-SSL: on\r\n", "\r\nAuth-Login-Attempt: 1\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("request lacks %q as nginx spells it; request head:\n%s", strings.TrimSpace(want), got)
		}
	}
}

// serveOneRaw reads one request head from ln, sends it on head and answers
// with an nginx-style OK.
func serveOneRaw(ln net.Listener, head chan<- string) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil || line == "\r\n" {
			break
		}
	}
	head <- b.String()
	_, _ = c.Write([]byte("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 143\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// TestChecked: an OK to a request that carried the password (PassPassword)
// means the service checked it (Route.Checked, which login=xclient
// needs); without the password sent, it means nothing of the kind.
func TestChecked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Auth-Status", "OK")
		w.Header().Set("Auth-Server", "127.0.0.1")
		w.Header().Set("Auth-Port", "143")
	}))
	defer srv.Close()
	for _, tc := range []struct {
		pass     bool
		password string
		want     bool
	}{{true, "secret", true}, {false, "secret", false}, {true, "", false}} {
		s := newSource(t, Config{URL: srv.URL, PassPassword: tc.pass})
		rt, err := s.Lookup(context.Background(), route.Request{Protocol: "imap", Account: "alice@a.test", Password: tc.password})
		if err != nil || rt.Checked != tc.want {
			t.Errorf("PassPassword %v, password %q: Checked %v (err %v), want %v", tc.pass, tc.password, rt.Checked, err, tc.want)
		}
	}
}
