package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/listener"
	"github.com/pipegate/pipegate/route"
)

// seen collects what a fake backend was sent.
type seen chan *wire.Command

func (s seen) next(t *testing.T) *wire.Command {
	t.Helper()
	return <-s
}

// TestBackendIDAndLiterals: a Dovecot-like backend (ID, LITERAL+) gets the
// client's address by ID, with the client's own ID fields (minus x-
// fields), then LOGIN with the route's login name; bytes it sends right
// after its OK reach the client.
func TestBackendIDAndLiterals(t *testing.T) {
	got := make(seen, 10)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] fake ready\r\n")
		// Post-login data in the same packet as the OK.
		fc.answerIDThenLogin(got, " OK [CAPABILITY IMAP4rev1 IDLE XFAKE] Logged in\r\n* 3 EXISTS\r\n")
	})
	b, _ := route.ParseBackend("imap://" + fb.addr) // ID on by default
	r := route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
		return route.Route{Backends: []route.Backend{b}, Login: "renamed@x.test"}, nil
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a ID (\"name\" \"raw\" \"X-Originating-IP\" \"6.6.6.6\" \"os\" NIL)\r\n")
	c.expectPrefix("a OK")
	pass := "s\u00e9c\"r\\et {5}" // 8-bit, quote, backslash, literal-like text: one literal
	c.send("b LOGIN user {" + strconv.Itoa(len(pass)) + "+}\r\n" + pass + "\r\n")
	if l := c.expectPrefix("b "); l != "b OK [CAPABILITY IMAP4rev1 IDLE XFAKE] Logged in" {
		t.Errorf("got %q", l)
	}
	if l := c.line(); l != "* 3 EXISTS" {
		t.Errorf("backend's pipelined data: %q", l)
	}
	c.send("c NOOP\r\n")
	if l := c.line(); l != "c OK NOOP done by fake" {
		t.Errorf("got %q", l)
	}

	id := got.next(t)
	if id.Name != "ID" || len(id.Args) != 1 || id.Args[0].Kind != wire.KindList {
		t.Fatalf("first command %+v, want ID", id)
	}
	fields := map[string]string{}
	l := id.Args[0].List
	for i := 0; i+1 < len(l); i += 2 {
		fields[l[i].Str] = l[i+1].Str
	}
	local, _, _ := net.SplitHostPort(p.addr)
	if fields["x-originating-ip"] != "127.0.0.1" || fields["x-originating-port"] == "" ||
		fields["x-connected-ip"] != local || fields["x-session-id"] == "" ||
		fields["name"] != "raw" || fields["os"] != "NIL" || fields["X-Originating-IP"] != "" {
		t.Errorf("ID fields %q", fields)
	}
	login := got.next(t)
	if args, err := login.AStrings(2); login.Name != "LOGIN" || err != nil || args[0] != "renamed@x.test" || args[1] != pass {
		t.Errorf("backend got %+v", login)
	}
	if !login.Args[1].NonSync {
		t.Errorf("an 8-bit password should be a LITERAL+ literal: %+v", login.Args[1])
	}
}

// TestBackendLoginDisabledAndSyncLiteral: a backend with LOGINDISABLED gets
// AUTHENTICATE PLAIN (no SASL-IR: after "+"); a tagged OK without
// CAPABILITY makes the proxy ask; no LITERAL+ means synchronizing literals.
func TestBackendAuthPlainAndCapability(t *testing.T) {
	got := make(seen, 10)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] ready\r\n")
		c := fc.cmd()
		if c == nil {
			return
		}
		got <- c
		fc.send("+ \r\n")
		line, err := fc.rd.ReadLine()
		if err != nil {
			return
		}
		got <- &wire.Command{Name: "SASL", Args: []wire.Value{{Str: string(line)}}}
		fc.send(c.Tag + " OK Logged in\r\n")
		c = fc.cmd()
		if c == nil {
			return
		}
		got <- c
		fc.send("* CAPABILITY IMAP4rev1 XAFTER\r\n" + c.Tag + " OK done\r\n")
		fc.serveAfterLogin()
	})
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN u@x.test pw\r\n")
	if l := c.line(); l != "a OK [CAPABILITY IMAP4rev1 XAFTER] Logged in" {
		t.Errorf("got %q", l)
	}
	if a := got.next(t); a.Name != "AUTHENTICATE" || len(a.Args) != 1 || a.Args[0].Str != "PLAIN" {
		t.Errorf("got %+v", a)
	}
	want := base64.StdEncoding.EncodeToString([]byte("\x00u@x.test\x00pw"))
	if s := got.next(t); s.Args[0].Str != want {
		t.Errorf("SASL response %q", s.Args[0].Str)
	}
	if c := got.next(t); c.Name != "CAPABILITY" {
		t.Errorf("got %+v", c)
	}
}

func TestBackendSyncLiteralAndNO(t *testing.T) {
	got := make(seen, 10)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1] ready\r\n") // no LITERAL+, no ID
		c := fc.cmd()
		if c == nil {
			return
		}
		got <- c
		fc.send(c.Tag + " NO [AUTHENTICATIONFAILED] Bad password\r\n")
	})
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr}})
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c := dialRaw(t, p.addr)
	c.send("a LOGIN u@x.test \"p\\\"w\"\r\n")
	c.send("") // nothing
	if l := c.line(); l != "a NO [AUTHENTICATIONFAILED] Bad password" {
		t.Errorf("got %q", l)
	}
	login := got.next(t)
	if args, _ := login.AStrings(2); args[1] != `p"w` {
		t.Errorf("got %q", args)
	}

	c.send("b LOGIN u@x.test {3}\r\n")
	c.expectPrefix("+ ")
	c.send("p\xffw\r\n")
	if l := c.line(); l != "b NO [AUTHENTICATIONFAILED] Bad password" {
		t.Errorf("got %q", l)
	}
	login = got.next(t)
	if args, _ := login.AStrings(2); args[1] != "p\xffw" || login.Args[1].Kind != wire.KindLiteral || login.Args[1].NonSync {
		t.Errorf("8-bit password to a backend without LITERAL+: %+v", login.Args)
	}
}

// TestXOAUTH2 passes the exchange through, including the error challenge.
func TestXOAUTH2(t *testing.T) {
	bearer := strings.Repeat("t", 12000) // Azure AD tokens with many claims are this big
	token := func(user string) string {
		return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + bearer + "\x01\x01"))
	}
	got := make(seen, 10)
	fb := startFake(t, func(fc *fakeConn) {
		fc.rd.MaxLine = 1 << 20
		fc.send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n")
		for {
			c := fc.cmd()
			if c == nil {
				return
			}
			got <- c
			if c.Args[1].Str == token("good@x.test") {
				fc.send(c.Tag + " OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n")
				fc.serveAfterLogin()
				return
			}
			fc.send("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")
			line, err := fc.rd.ReadLine()
			if err != nil || len(line) != 0 {
				fc.t.Errorf("fake: answer to the error challenge: %q %v", line, err)
				return
			}
			fc.send(c.Tag + " NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
		}
	})
	var accounts []string
	r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		accounts = append(accounts, req.Account+"/"+req.AuthMethod)
		b, _ := route.ParseBackend("imap://" + fb.addr)
		return route.Route{Backends: []route.Backend{b}}, nil
	})
	// "," (from OAUTHBEARER's "=2C") is not among Dovecot's default characters.
	p := startProxy(t, &imap.Server{
		Server: gateway.Server{
			Router:             r,
			AllowPlaintextAuth: true,
			OAuth:              true,
			Accounts:           gateway.AccountRules{Chars: gateway.DefaultUsernameChars + ","},
		},
	})
	c := dialRaw(t, p.addr)
	c.send("a AUTHENTICATE XOAUTH2 " + token("bad@x.test") + "\r\n")
	if l := c.line(); l != "+ eyJzdGF0dXMiOiI0MDEifQ==" {
		t.Fatalf("got %q", l)
	}
	c.send("\r\n")
	if l := c.line(); l != "a NO [AUTHENTICATIONFAILED] Invalid credentials" {
		t.Errorf("got %q", l)
	}
	c.send("b AUTHENTICATE XOAUTH2\r\n")
	c.expectPrefix("+ ")
	c.send(token("good@x.test") + "\r\n")
	if l := c.line(); l != "b OK [CAPABILITY IMAP4rev1 IDLE] hi" {
		t.Errorf("got %q", l)
	}
	c.send("c LOGOUT\r\n")
	c.expectPrefix("c OK")
	if strings.Join(accounts, " ") != "bad@x.test/xoauth2 good@x.test/xoauth2" {
		t.Errorf("routed %q", accounts)
	}

	// OAUTHBEARER: the user is in the GS2 header.
	c2 := dialRaw(t, p.addr)
	msg := base64.StdEncoding.EncodeToString([]byte("n,a=ob=2Cx@x.test,\x01host=h\x01auth=Bearer t\x01\x01"))
	c2.send("a AUTHENTICATE OAUTHBEARER " + msg + "\r\n")
	c2.expectPrefix("+ ")
	c2.send("\r\n")
	c2.expectPrefix("a NO")
	if accounts[len(accounts)-1] != "ob,x@x.test/oauthbearer" {
		t.Errorf("routed %q", accounts)
	}
}

// TestBackendTLS: STARTTLS and implicit TLS to backends, verified against
// BackendTLS's roots; an unknown CA makes the backend unavailable.
func TestBackendTLS(t *testing.T) {
	pki := newPKI(t)
	users := map[string]string{"alice@a.test": "apass"}
	st := startBackend(t, users, backendOpts{tls: pki.server})
	im := startBackend(t, users, backendOpts{tls: pki.server, implicit: true})
	var which string
	r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		b, err := route.ParseBackend(which)
		return route.Route{Backends: []route.Backend{b}}, err
	})
	p := startProxy(t, &imap.Server{
		Server: gateway.Server{
			Router:             r,
			AllowPlaintextAuth: true,
			BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
		},
	})
	for _, u := range []string{"imap+starttls://" + st.addr + "?id=0", "imaps://" + im.addr + "?id=0"} {
		which = u
		c := dialClient(t, p.addr)
		if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// Wrong server name: verification fails.
	which = "imaps://" + im.addr + "?id=0&server_name=other.test"
	c := dialClient(t, p.addr)
	err := c.Login("alice@a.test", "apass").Wait()
	var ie *goimap.Error
	if !errors.As(err, &ie) || ie.Code != goimap.ResponseCodeUnavailable {
		t.Fatalf("unverifiable backend: %v, want UNAVAILABLE", err)
	}
}

// TestBackendTLSResumed: the second login to an implicit-TLS backend
// resumes the TLS session of the first (its ticket, cached per backend
// name), as nginx's proxy_ssl_session_reuse and HAProxy's servers do: a
// resumed handshake signs nothing on either side. Verification still
// holds: the first handshake was verified against BackendTLS's roots.
func TestBackendTLSResumed(t *testing.T) {
	pki := newPKI(t)
	var mu sync.Mutex
	var resumed []bool
	cfg := pki.server.Clone()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		mu.Lock()
		defer mu.Unlock()
		resumed = append(resumed, cs.DidResume)
		return nil
	}
	im := startBackend(t, map[string]string{"alice@a.test": "apass"}, backendOpts{tls: cfg, implicit: true})
	r := route.RouterFunc(func(context.Context, route.Request) (route.Route, error) {
		b, err := route.ParseBackend("imaps://" + im.addr + "?id=0")
		return route.Route{Backends: []route.Backend{b}}, err
	})
	p := startProxy(t, &imap.Server{
		Server: gateway.Server{Router: r, AllowPlaintextAuth: true, BackendTLS: &tls.Config{RootCAs: pki.ca.Pool()}},
	})
	for range 3 {
		c := dialClient(t, p.addr)
		if err := c.Login("alice@a.test", "apass").Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{false, true, true}; !slices.Equal(resumed, want) {
		t.Errorf("backend handshakes resumed: %v, want %v", resumed, want)
	}
}

// TestProxyProtocol: a trusted load balancer's PROXY header gives the
// client address, which goes to the backend by ID; a backend with
// proxy=v2 gets a PROXY header.
func TestProxyProtocol(t *testing.T) {
	got := make(chan string, 4)
	fb := startFake(t, func(fc *fakeConn) {
		// Read the PROXY v2 header through listener's own parser.
		conn, client, _, err := (&listener.ProxyPolicy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Required: true}).Handshake(fc.c)
		if err != nil {
			fc.t.Errorf("fake: %v", err)
			return
		}
		got <- client.String()
		fc.c = conn
		fc.br = bufio.NewReader(conn)
		fc.rd = wire.NewReader(fc.br)
		fc.send("* OK [CAPABILITY IMAP4rev1 ID] ready\r\n")
		for {
			c := fc.cmd()
			if c == nil {
				return
			}
			switch c.Name {
			case "ID":
				l := c.Args[0].List
				for i := 0; i+1 < len(l); i += 2 {
					if l[i].Str == "x-originating-ip" {
						got <- l[i+1].Str
					}
				}
				fc.send(c.Tag + " OK\r\n")
			case "LOGIN":
				fc.send(c.Tag + " OK [CAPABILITY IMAP4rev1] in\r\n")
				fc.serveAfterLogin()
				return
			}
		}
	})
	r := routes(t, map[string][]string{"@x.test": {"imap://" + fb.addr + "?proxy=v2"}})
	p := startProxy(t, &imap.Server{
		Server: gateway.Server{
			Router:             r,
			AllowPlaintextAuth: true,
			Proxy:              &listener.ProxyPolicy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Required: true},
		},
	})
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := listener.WriteHeader(conn, "v1", netip.MustParseAddrPort("203.0.113.7:4567"), netip.MustParseAddrPort("192.0.2.1:143")); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, r: newLineReader(conn)}
	c.expectPrefix("* OK")
	c.send("a LOGIN u@x.test pw\r\n")
	c.expectPrefix("a OK")
	if s := <-got; s != "203.0.113.7:4567" {
		t.Errorf("backend's PROXY header says %s", s)
	}
	// client_addr is one mode: with proxy=v2 the header carries the
	// address and no ID is sent (the fake handles ID before LOGIN, so an
	// ID would be in got by now).
	select {
	case s := <-got:
		t.Errorf("backend's ID says %s besides the PROXY header", s)
	default:
	}
}

// TestPlainAuthzid: AUTHENTICATE PLAIN with an authorization identity
// (a master user acting as someone) routes by that identity and reaches
// the backend as AUTHENTICATE PLAIN with both names.
func TestPlainAuthzid(t *testing.T) {
	got := make(seen, 4)
	fb := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n")
		c := fc.cmd()
		if c == nil {
			return
		}
		got <- c
		fc.send(c.Tag + " OK [CAPABILITY IMAP4rev1] in\r\n")
		fc.serveAfterLogin()
	})
	var account string
	r := route.RouterFunc(func(_ context.Context, req route.Request) (route.Route, error) {
		account = req.Account + "/" + req.AuthMethod
		b, _ := route.ParseBackend("imap://" + fb.addr)
		return route.Route{Backends: []route.Backend{b}}, nil
	})
	p := startProxy(t, &imap.Server{
		Server: gateway.Server{
			Router:             r,
			AllowPlaintextAuth: true,
			Hostname:           "gw.test",
			Accounts:           gateway.AccountRules{AllowMasterUsers: true},
		},
		IMAP4rev2: true,
	})
	c := dialRaw(t, p.addr) // reads the greeting
	ir := base64.StdEncoding.EncodeToString([]byte("alice@x.test\x00admin\x00pw"))
	c.send("a CAPABILITY\r\n")
	if l := c.line(); !strings.HasPrefix(l, "* CAPABILITY IMAP4rev1 IMAP4rev2 ") {
		t.Errorf("caps %q", l)
	}
	c.expectPrefix("a OK")
	c.send("b AUTHENTICATE PLAIN " + ir + "\r\n")
	c.expectPrefix("b OK [CAPABILITY IMAP4rev1] in")
	if account != "alice@x.test/plain" {
		t.Errorf("routed %q", account)
	}
	a := got.next(t)
	if a.Name != "AUTHENTICATE" || len(a.Args) != 2 || a.Args[0].Str != "PLAIN" || a.Args[1].Str != ir {
		t.Errorf("backend got %+v", a)
	}
}

func TestGreetingHostname(t *testing.T) {
	_, _, r := twoBackends(t)
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, Hostname: "gw.test"}})
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawClient{t: t, conn: conn, r: newLineReader(conn)}
	if l := c.line(); !strings.HasSuffix(l, "] gw.test "+imap.DefaultGreeting) {
		t.Errorf("greeting %q", l)
	}
}

// TestBackendLoginAnsweredBeforeID: a backend may complete the login
// pipelined behind the proxy's ID before the ID itself (RFC 9051 section
// 5.5); the client still gets the login's answer at once, not after the
// backend timeout, whether the login went as LOGIN or as AUTHENTICATE
// with an initial response.
func TestBackendLoginAnsweredBeforeID(t *testing.T) {
	for _, tc := range []struct{ name, caps, login string }{
		{"LOGIN", "IMAP4rev1 ID", "LOGIN"},
		{"AUTHENTICATE", "IMAP4rev1 ID SASL-IR LOGINDISABLED AUTH=PLAIN", "AUTHENTICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(seen, 10)
			fb := startFake(t, func(fc *fakeConn) {
				fc.send("* OK [CAPABILITY " + tc.caps + "] fake\r\n")
				id, login := fc.cmd(), fc.cmd()
				if id == nil || login == nil {
					return
				}
				got <- id
				got <- login
				fc.send(login.Tag + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
				fc.send("* ID NIL\r\n" + id.Tag + " OK ID done\r\n")
				fc.serveAfterLogin()
			})
			p := startProxy(t, &imap.Server{Server: gateway.Server{
				Router:             oneBackend(t, "imap://"+fb.addr),
				AllowPlaintextAuth: true,
				BackendTimeout:     time.Hour, // past the client's deadline: a wait fails the test
			}})
			c := dialRaw(t, p.addr)
			c.send("a LOGIN alice@a.test secret\r\n")
			if l := c.expectPrefix("a "); l != "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in" {
				t.Errorf("login: %q", l)
			}
			c.send("b NOOP\r\n")
			if l := c.line(); l != "b OK NOOP done by fake" {
				t.Errorf("NOOP: %q", l)
			}
			if id, login := got.next(t), got.next(t); id.Name != "ID" || login.Name != tc.login {
				t.Errorf("the backend got %s then %s, want ID then %s", id.Name, login.Name, tc.login)
			}
		})
	}
}
