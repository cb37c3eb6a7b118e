package imap_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/route"
)

// twoBackends: alice on A (routed by account), bob and carol on B (routed
// by domain).
func twoBackends(t *testing.T) (a, b *memBackend, r route.Router) {
	a = startBackend(t, map[string]string{"alice@a.test": "apass"}, backendOpts{})
	b = startBackend(t, map[string]string{"bob@b.test": "bpass", "carol@b.test": "cpass"}, backendOpts{})
	r = routes(t, map[string][]string{
		"alice@a.test": {plainURL(a.addr)},
		"@b.test":      {plainURL(b.addr)},
	})
	return a, b, r
}

func TestLoginRoutesByAccountAndDomain(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	for _, tc := range []struct{ user, pass string }{
		{"alice@a.test", "apass"}, {"bob@b.test", "bpass"}, {"carol@b.test", "cpass"},
	} {
		c := dialClient(t, p.addr)
		if err := c.Login(tc.user, tc.pass).Wait(); err != nil {
			t.Fatalf("login %s: %v", tc.user, err)
		}
		// The post-login capabilities are the backend's.
		if caps := c.Caps(); !caps.Has(goimap.CapIdle) {
			t.Errorf("caps after login %v lack IDLE", caps)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("select as %s: %v", tc.user, err)
		}
		if err := c.Logout().Wait(); err != nil {
			t.Fatalf("logout %s: %v", tc.user, err)
		}
	}
}

// saslPlain is a SASL PLAIN client (go-sasl's interface, without the import).
type saslPlain struct{ user, pass string }

func (s saslPlain) Start() (string, []byte, error) {
	return "PLAIN", []byte("\x00" + s.user + "\x00" + s.pass), nil
}
func (s saslPlain) Next([]byte) ([]byte, error) { return nil, errors.New("unexpected challenge") }

func TestAuthenticatePlain(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})

	t.Run("SASL-IR", func(t *testing.T) {
		c := dialClient(t, p.addr)
		if err := c.Authenticate(saslPlain{"bob@b.test", "bpass"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("continuation", func(t *testing.T) {
		c := dialRaw(t, p.addr)
		c.send("a AUTHENTICATE PLAIN\r\n")
		if l := c.line(); l != "+ " {
			t.Fatalf("got %q, want an empty continuation", l)
		}
		c.send(base64.StdEncoding.EncodeToString([]byte("\x00alice@a.test\x00apass")) + "\r\n")
		if l := c.expectPrefix("a "); !strings.HasPrefix(l, "a OK [CAPABILITY IMAP4rev1") {
			t.Fatalf("got %q", l)
		}
		c.send("b SELECT INBOX\r\n")
		c.expectPrefix("b OK")
	})
	t.Run("AUTH=LOGIN", func(t *testing.T) {
		c := dialRaw(t, p.addr)
		c.send("a AUTHENTICATE LOGIN\r\n")
		if l := c.line(); l != "+ VXNlcm5hbWU6" {
			t.Fatalf("got %q", l)
		}
		c.send(base64.StdEncoding.EncodeToString([]byte("alice@a.test")) + "\r\n")
		if l := c.line(); l != "+ UGFzc3dvcmQ6" {
			t.Fatalf("got %q", l)
		}
		c.send(base64.StdEncoding.EncodeToString([]byte("apass")) + "\r\n")
		c.expectPrefix("a OK [CAPABILITY")
	})
	t.Run("cancel", func(t *testing.T) {
		c := dialRaw(t, p.addr)
		c.send("a AUTHENTICATE PLAIN\r\n")
		c.line()
		c.send("*\r\n")
		if l := c.line(); !strings.HasPrefix(l, "a BAD") {
			t.Fatalf("got %q", l)
		}
		c.send("b NOOP\r\n")
		c.expectPrefix("b OK")
	})
	t.Run("bad base64 and unknown mechanism", func(t *testing.T) {
		c := dialRaw(t, p.addr)
		c.send("a AUTHENTICATE PLAIN !!!\r\n")
		if l := c.line(); !strings.HasPrefix(l, "a BAD") {
			t.Fatalf("got %q", l)
		}
		c.send("b AUTHENTICATE CRAM-MD5\r\n")
		if l := c.line(); !strings.HasPrefix(l, "b NO") {
			t.Fatalf("got %q", l)
		}
		c.send("c AUTHENTICATE XOAUTH2 eA==\r\n") // not configured
		if l := c.line(); !strings.HasPrefix(l, "c NO") {
			t.Fatalf("got %q", l)
		}
	})
}

// TestLoginLiterals sends the user name as a synchronizing and the
// password as a non-synchronizing literal, and a password the backend
// must get as a literal.
func TestLoginLiterals(t *testing.T) {
	a := startBackend(t, map[string]string{"alice@a.test": "apass", "dora@a.test": "p\u00e4ss \"x\""}, backendOpts{})
	r := routes(t, map[string][]string{"@a.test": {plainURL(a.addr)}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})

	c := dialRaw(t, p.addr)
	c.send("a LOGIN {12}\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	c.send("alice@a.test {5+}\r\napass\r\n")
	c.expectPrefix("a OK [CAPABILITY")
	c.send("b SELECT INBOX\r\n")
	c.expectPrefix("b OK")

	// 8-bit password: the backend (LITERAL-) gets a literal.
	c2 := dialRaw(t, p.addr)
	pass := "p\u00e4ss \"x\""
	c2.send("a LOGIN dora@a.test {" + strconv.Itoa(len(pass)) + "+}\r\n" + pass + "\r\n")
	c2.expectPrefix("a OK [CAPABILITY")
}

func TestWrongThenRightPassword(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialClient(t, p.addr)
	err := c.Login("alice@a.test", "wrong").Wait()
	var ie *goimap.Error
	if !errors.As(err, &ie) || ie.Type != goimap.StatusResponseTypeNo || ie.Code != goimap.ResponseCodeAuthenticationFailed {
		t.Fatalf("wrong password: %v, want NO [AUTHENTICATIONFAILED]", err)
	}
	if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestStartTLSAndImplicitTLS(t *testing.T) {
	pki := newPKI(t)
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, TLSConfig: pki.server}})

	c, err := imapclient.DialStartTLS(p.addr, &imapclient.Options{TLSConfig: pki.client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatalf("login after STARTTLS: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	c2, err := imapclient.DialTLS(p.tlsAddr, &imapclient.Options{TLSConfig: pki.client})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if caps := c2.Caps(); caps.Has(goimap.CapStartTLS) || caps.Has(goimap.CapLoginDisabled) || !caps.Has("AUTH=PLAIN") {
		t.Errorf("caps on TLS: %v", caps)
	}
	if err := c2.Login("bob@b.test", "bpass").Wait(); err != nil {
		t.Fatalf("login on implicit TLS: %v", err)
	}
	if _, err := c2.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

// countingRouter counts lookups.
func countingRouter(r route.Router, n *atomic.Int32) route.Router {
	return route.RouterFunc(func(ctx context.Context, req route.Request) (route.Route, error) {
		n.Add(1)
		return r.Lookup(ctx, req)
	})
}

func TestPlaintextAuthRefusedOnPlainLink(t *testing.T) {
	pki := newPKI(t)
	_, _, r := twoBackends(t)
	var lookups atomic.Int32
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: countingRouter(r, &lookups), TLSConfig: pki.server}})
	c := dialRaw(t, p.addr)
	c.send("a CAPABILITY\r\n")
	caps := c.expectPrefix("* CAPABILITY")
	if !strings.Contains(caps, " STARTTLS") || !strings.Contains(caps, " LOGINDISABLED") || strings.Contains(caps, "AUTH=") {
		t.Errorf("plain-link caps: %q", caps)
	}
	c.expectPrefix("a OK")
	c.send("b LOGIN alice@a.test apass\r\n")
	if l := c.line(); !strings.HasPrefix(l, "b NO [PRIVACYREQUIRED]") {
		t.Errorf("got %q", l)
	}
	c.send("c AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@a.test\x00apass")) + "\r\n")
	if l := c.line(); !strings.HasPrefix(l, "c NO [PRIVACYREQUIRED]") {
		t.Errorf("got %q", l)
	}
	if lookups.Load() != 0 {
		t.Errorf("router asked %d times", lookups.Load())
	}
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestFailoverAndUnavailable(t *testing.T) {
	a := startBackend(t, map[string]string{"alice@a.test": "apass"}, backendOpts{})
	dead := deadAddr(t)
	r := routes(t, map[string][]string{
		"alice@a.test": {plainURL(dead), plainURL(a.addr)},
		"@down.test":   {plainURL(dead)},
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})

	c := dialClient(t, p.addr)
	if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatalf("failover: %v", err)
	}
	c2 := dialClient(t, p.addr)
	err := c2.Login("x@down.test", "pw").Wait()
	var ie *goimap.Error
	if !errors.As(err, &ie) || ie.Code != goimap.ResponseCodeUnavailable {
		t.Fatalf("all backends down: %v, want NO [UNAVAILABLE]", err)
	}
	// The client may try again (here: an account that works).
	c2.Close()
}

func TestRouterAnswers(t *testing.T) {
	a := startBackend(t, map[string]string{"alice@a.test": "apass"}, backendOpts{})
	ab, _ := route.ParseBackend(plainURL(a.addr))
	r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		switch req.Account {
		case "denied@a.test":
			return route.Route{}, &route.Denied{Text: "Account locked\r\n* OK injected"}
		case "broken@a.test":
			return route.Route{}, errors.New("database down")
		case "alias":
			if req.Password != "apass" || req.AuthMethod != "login" || req.Attempt != 1 || !req.ClientAddr.IsValid() {
				return route.Route{}, errors.New("bad request")
			}
			return route.Route{Backends: []route.Backend{ab}, Login: "alice@a.test"}, nil
		}
		return route.Route{}, route.ErrNotFound
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, MaxLoginFailures: 10}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN nobody@a.test x\r\n")
	if l := c.line(); l != "a NO [AUTHENTICATIONFAILED] Authentication failed." {
		t.Errorf("no route: %q", l)
	}
	c.send("b LOGIN denied@a.test x\r\n")
	if l := c.line(); l != "b NO [AUTHENTICATIONFAILED] Account locked  * OK injected" {
		t.Errorf("denied: %q", l)
	}
	c.send("c LOGIN broken@a.test x\r\n")
	if l := c.line(); !strings.HasPrefix(l, "c NO [UNAVAILABLE]") {
		t.Errorf("router error: %q", l)
	}
	// A route may rename the account.
	c2 := dialRaw(t, p.addr)
	c2.send("a LOGIN alias apass\r\n")
	c2.expectPrefix("a OK [CAPABILITY")
}

// TestPipelinedAfterLogin: commands sent in the same packet as LOGIN reach
// the backend after the login.
func TestPipelinedAfterLogin(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN alice@a.test apass\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
	c.expectPrefix("a OK [CAPABILITY")
	c.expectPrefix("b OK")
	c.expectPrefix("* BYE")
	c.expectPrefix("c OK")
	c.expectClosed()
}

func TestIdleAndBigAppend(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})

	exists := make(chan uint32, 4)
	idler, err := imapclient.DialInsecure(p.addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idler.Close()
	if err := idler.Login("bob@b.test", "bpass").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := idler.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}

	// 10 MiB message from a second session.
	msg := bigMessage(10 << 20)
	c := dialClient(t, p.addr)
	if err := c.Login("bob@b.test", "bpass").Wait(); err != nil {
		t.Fatal(err)
	}
	app := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := app.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Wait(); err != nil {
		t.Fatalf("append: %v", err)
	}
	if n := <-exists; n != 1 {
		t.Errorf("IDLE saw %d messages, want 1", n)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	// Read it back through the proxy.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{RFC822Size: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].RFC822Size != int64(len(msg)) {
		t.Fatalf("fetch: %v %+v", err, msgs)
	}
}

func bigMessage(size int) []byte {
	head := "From: a@b.test\r\nTo: bob@b.test\r\nSubject: big\r\n\r\n"
	line := strings.Repeat("0123456789abcdef", 4) + "\r\n"
	var b strings.Builder
	b.WriteString(head)
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	b.WriteString(strings.Repeat("x", size-b.Len()))
	return []byte(b.String())
}

// TestStartTLSPipelinedPlaintext: a command injected after STARTTLS in
// the plaintext stream must never be executed (CVE-2011-0411).
func TestStartTLSPipelinedPlaintext(t *testing.T) {
	pki := newPKI(t)
	_, _, r := twoBackends(t)
	var lookups atomic.Int32
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: countingRouter(r, &lookups), TLSConfig: pki.server, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a STARTTLS\r\nb LOGIN alice@a.test apass\r\nc CAPABILITY\r\n")
	if l := c.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("got %q", l)
	}
	// The rest is a broken TLS handshake: the proxy closes; no line of ours.
	var rest []byte
	buf := make([]byte, 4096)
	for range 100 {
		n, err := c.conn.Read(buf)
		rest = append(rest, buf[:n]...)
		if err != nil {
			break
		}
	}
	if strings.Contains(string(rest), "b ") || strings.Contains(string(rest), "CAPABILITY") {
		t.Errorf("injected commands answered: %q", rest)
	}
	if lookups.Load() != 0 {
		t.Errorf("injected LOGIN reached the router")
	}
	// The daemon keeps serving.
	c2, err := imapclient.DialStartTLS(p.addr, &imapclient.Options{TLSConfig: pki.client})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}, MaxLineLength: 1000, MaxLiteral: 1000})

	c0 := dialRaw(t, p.addr)
	c0.send("a LOGIN " + strings.Repeat("x", 5000) + " y\r\n")
	if l := c0.line(); !strings.HasPrefix(l, "a BAD [TOOBIG]") {
		t.Errorf("long line: %q", l)
	}
	// Answered when the limit is passed, before any newline: the rest of
	// the line cannot be told from the next command, so the session ends.
	if l := c0.line(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("after a long line: %q", l)
	}
	c0.expectClosed()

	c := dialRaw(t, p.addr)
	c.send("b LOGIN {5000}\r\n")
	if l := c.line(); !strings.HasPrefix(l, "b BAD [TOOBIG]") {
		t.Errorf("big literal: %q", l)
	}
	c.send("c LOGIN alice@a.test apass\r\n") // still usable
	c.expectPrefix("c OK [CAPABILITY")

	c2 := dialRaw(t, p.addr)
	c2.send("a LOGIN {5000+}\r\n" + strings.Repeat("x", 5000) + " y\r\n")
	if l := c2.line(); !strings.HasPrefix(l, "a BAD [TOOBIG]") {
		t.Errorf("big non-sync literal: %q", l)
	}
	if l := c2.line(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("after big non-sync literal: %q, want BYE", l)
	}
	c2.expectClosed()
}

func TestTooManyCommands(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r}, MaxCommandsBeforeLogin: 3})
	c := dialRaw(t, p.addr)
	c.send("a NOOP\r\nb NOOP\r\nc NOOP\r\nd NOOP\r\n")
	for _, tag := range []string{"a", "b", "c"} {
		c.expectPrefix(tag + " OK")
	}
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("got %q", l)
	}
	c.expectClosed()
}

func TestLoginTimeout(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, LoginTimeout: 100 * time.Millisecond}})
	c := dialRaw(t, p.addr)
	// No sleep: the read waits for the proxy to give up.
	if l := c.line(); l != "* BYE Login timeout" {
		t.Errorf("got %q", l)
	}
	c.expectClosed()
	// Slowloris: half a command, or a literal that never comes.
	for _, partial := range []string{"a LOG", "a LOGIN {10}\r\n", "a AUTHENTICATE PLAIN\r\n"} {
		c := dialRaw(t, p.addr)
		c.send(partial)
		lines := c.expectClosed()
		if len(lines) == 0 || lines[len(lines)-1] != "* BYE Login timeout" {
			t.Errorf("%q: got %q", partial, lines)
		}
	}
}

func TestMaxLoginFailures(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, MaxLoginFailures: 2}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN alice@a.test x\r\n")
	c.expectPrefix("a NO [AUTHENTICATIONFAILED]")
	c.send("b LOGIN nobody@nowhere.test x\r\n")
	c.expectPrefix("b NO [AUTHENTICATIONFAILED]")
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("got %q", l)
	}
	c.expectClosed()
	// Others are still served.
	c2 := dialClient(t, p.addr)
	if err := c2.Login("alice@a.test", "apass").Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestPreLoginCommands(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, OAuth: true}, Greeting: "hello"})
	c := dialRaw(t, p.addr)
	c.send("a ID (\"name\" \"test\" \"x-originating-ip\" \"6.6.6.6\")\r\n")
	if l := c.line(); l != `* ID ("name" "pipegate")` {
		t.Errorf("ID: %q", l)
	}
	c.expectPrefix("a OK")
	c.send("b CAPABILITY\r\n")
	caps := c.expectPrefix("* CAPABILITY ")
	for _, want := range []string{"IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "AUTH=PLAIN", "AUTH=LOGIN", "AUTH=XOAUTH2", "AUTH=OAUTHBEARER"} {
		if !strings.Contains(caps+" ", " "+want+" ") {
			t.Errorf("caps %q lack %s", caps, want)
		}
	}
	if strings.Contains(caps, "STARTTLS") || strings.Contains(caps, "IMAP4rev2") {
		t.Errorf("caps %q", caps)
	}
	c.expectPrefix("b OK")
	c.send("c SELECT INBOX\r\n")
	if l := c.line(); !strings.HasPrefix(l, "c BAD") {
		t.Errorf("SELECT: %q", l)
	}
	c.send("d FOO\r\n")
	if l := c.line(); !strings.HasPrefix(l, "d BAD") {
		t.Errorf("unknown: %q", l)
	}
	c.send("e STARTTLS\r\n")
	if l := c.line(); !strings.HasPrefix(l, "e NO") {
		t.Errorf("STARTTLS without TLS config: %q", l)
	}
	c.send("f LOGOUT\r\n")
	c.expectPrefix("* BYE")
	c.expectPrefix("f OK")
	c.expectClosed()
}

func TestTooManyBadCommands(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r}, MaxCommandsBeforeLogin: 3})
	c := dialRaw(t, p.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n")
	lines := c.expectClosed()
	if len(lines) != 4 || !strings.HasPrefix(lines[3], "* BYE") {
		t.Errorf("got %q", lines)
	}
}
