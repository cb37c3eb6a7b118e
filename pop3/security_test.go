package pop3_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/pop3"
)

// TestSTLSPipelined: bytes sent behind STLS in the same write are never
// executed as commands (CVE-2011-0411): they go into the TLS handshake,
// which fails, and the connection closes without another answer.
func TestSTLSPipelined(t *testing.T) {
	pki := newPKI(t)
	r := routes(t, nil)
	p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: r, TLSConfig: pki.server, AllowPlaintextAuth: true}})
	c := dial(t, "", p.addr)
	c.send("STLS\r\nUSER alice@a.test\r\nPASS pw\r\nCAPA\r\n")
	c.expect("+OK Begin TLS negotiation now.")
	if rest := c.expectClosed(); len(rest) > 0 {
		t.Fatalf("after STLS with pipelined commands: %q, want nothing", rest)
	}
	if n := r.lookups.Load(); n != 0 {
		t.Fatalf("%d route lookups: a pipelined command ran", n)
	}
}

// TestTooLong: a line over the limit is answered as soon as the limit is
// passed, while the client still holds the connection open, and the
// connection is closed: the proxy never waits for a line end.
func TestTooLong(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
		size         int
		want         string
	}{
		{"command", "USER ", 1100, "-ERR Command line too long (limit 1024 octets)"},
		{"AUTH line", "AUTH PLAIN ", 13000, "-ERR Command line too long (limit 12288 octets)"},
		{"SASL response", "", 13000, "-ERR SASL response too long (limit 12288 octets)"},
		{"1 MiB", "", 1 << 20, "-ERR Command line too long (limit 1024 octets)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: routes(t, nil), AllowPlaintextAuth: true}})
			c := dial(t, "", p.addr)
			if strings.HasPrefix(tc.want, "-ERR SASL") {
				c.send("AUTH PLAIN\r\n")
				c.expect("+ ")
			}
			// The proxy stops reading at the limit and closes: a big write
			// may then fail, so it runs on its own.
			done := make(chan struct{})
			go sendAll(c.conn, tc.prefix+strings.Repeat("A", tc.size), done)
			defer func() { <-done }()
			if l := c.line(); l != tc.want {
				t.Fatalf("got %q, want %q", l, tc.want)
			}
			if rest := c.expectClosed(); len(rest) > 0 {
				t.Fatalf("after the answer: %q", rest)
			}
		})
	}
}

// sendAll writes s, ignoring errors, and closes done.
func sendAll(w io.Writer, s string, done chan struct{}) {
	defer close(done)
	_, _ = io.WriteString(w, s)
}

// TestIdentity: a name or password with NUL, CR or LF, however it is
// sent, is refused before any route lookup (issue 17), as are names
// outside username_chars and an authorization identity of another user.
func TestIdentity(t *testing.T) {
	r := routes(t, map[string][]string{"@a.test": {"pop3://127.0.0.1:1"}})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, OAuth: true, MaxLoginFailures: 100}})
	split := "bob@a.test\x00alice@a.test"
	type step struct{ send, want string }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"USER with NUL", []step{{"USER " + split, "-ERR Invalid character 0x00 in command"}}},
		{"USER with CR", []step{{"USER bob@a.test\ralice@a.test", "-ERR Invalid character 0x0d in command"}}},
		{"PASS with NUL", []step{{"USER bob@a.test", "+OK"}, {"PASS pw\x00x", "-ERR Invalid character 0x00 in command"}}},
		{"USER outside username_chars", []step{{"USER bob smith@a.test", "+OK"}, {"PASS pw", "-ERR [AUTH] Invalid characters in the user name"}}},
		{"AUTH LOGIN initial response", []step{{"AUTH LOGIN " + b64(split), "+ "}, {b64("pw"), "-ERR [AUTH] Invalid characters in the user name"}}},
		{"AUTH LOGIN continuation", []step{{"AUTH LOGIN", "+ "}, {b64(split), "+ "}, {b64("pw"), "-ERR [AUTH] Invalid characters in the user name"}}},
		{"AUTH LOGIN LF in the password", []step{{"AUTH LOGIN", "+ "}, {b64("bob@a.test"), "+ "}, {b64("p\nw"), "-ERR [AUTH] Invalid characters in the password"}}},
		{"AUTH PLAIN NUL inside", []step{{"AUTH PLAIN " + b64("\x00"+split+"\x00pw"), "-ERR [AUTH] Invalid PLAIN message"}}},
		{"AUTH PLAIN continuation, CR in the name", []step{{"AUTH PLAIN", "+ "}, {b64("\x00bob@a.test\r\x00pw"), "-ERR [AUTH] Invalid characters in the user name"}}},
		{"AUTH PLAIN LF in the password", []step{{"AUTH PLAIN " + b64("\x00bob@a.test\x00p\nw"), "-ERR [AUTH] Invalid characters in the password"}}},
		{"XOAUTH2", []step{{"AUTH XOAUTH2 " + b64("user="+split+"\x01auth=Bearer t\x01\x01"), "-ERR [AUTH] Invalid characters in the user name"}}},
		{"OAUTHBEARER", []step{{"AUTH OAUTHBEARER " + b64("n,a="+split+",\x01auth=Bearer t\x01\x01"), "-ERR [AUTH] Invalid characters in the user name"}}},
		{"authzid of another user", []step{{"AUTH PLAIN " + b64("alice@a.test\x00bob@a.test\x00pw"), "-ERR [AUTH] Authorization identity differs from the user name"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, "", p.addr)
			for _, s := range tc.steps {
				if l := c.cmd(s.send); !strings.HasPrefix(l, s.want) {
					t.Fatalf("after %q: got %q, want %q", s.send, l, s.want)
				}
			}
			if n := r.lookups.Load(); n != 0 {
				t.Fatalf("%d route lookups for a refused name", n)
			}
		})
	}
}

// TestUniformFailure: an unknown account, a domain no route serves and a
// wrong password get the same answer.
func TestUniformFailure(t *testing.T) {
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"alice@a.test": {"pop3://" + f.addr}}),
		AllowPlaintextAuth: true, MaxLoginFailures: 10,
	}})
	c := dial(t, "", p.addr)
	for _, name := range []string{"alice@a.test", "nobody@a.test", "x@unknown.test"} {
		c.cmd("USER " + name)
		if l := c.cmd("PASS wrong"); l != "-ERR [AUTH] Authentication failed." {
			t.Fatalf("%s: %q", name, l)
		}
	}
}

// TestBackendSTLS: pop3+starttls verifies the backend's certificate
// against BackendTLS, and refuses plaintext sent after the backend's +OK
// to STLS (then no backend is left: [SYS/TEMP]).
func TestBackendSTLS(t *testing.T) {
	pki := newPKI(t)
	other := newPKI(t)
	users := map[string]string{"alice@a.test": "pw"}
	for _, tc := range []struct {
		name    string
		opts    fakeOpts
		roots   *tls.Config
		want    string
		wantCmd []string
	}{
		{"verified", fakeOpts{tls: pki.server, caps: []string{"SASL PLAIN"}, users: users}, pki.client, "+OK Logged in.", []string{"STLS", "CAPA", "AUTH PLAIN " + b64("\x00alice@a.test\x00pw")}},
		{"unknown CA", fakeOpts{tls: pki.server, caps: []string{"SASL PLAIN"}, users: users}, other.client, "-ERR [SYS/TEMP] " + gateway.TextUnavailable, []string{"STLS"}},
		{"plaintext after +OK", fakeOpts{tls: pki.server, afterSTLS: "+OK injected\r\n", users: users}, pki.client, "-ERR [SYS/TEMP] " + gateway.TextUnavailable, []string{"STLS"}},
		{"STLS refused", fakeOpts{users: users}, pki.client, "-ERR [SYS/TEMP] " + gateway.TextUnavailable, []string{"STLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, tc.opts)
			p := startProxy(t, &pop3.Server{Server: gateway.Server{
				Router:             routes(t, map[string][]string{"@a.test": {"pop3+starttls://" + f.addr + "?server_name=localhost&client_addr=none"}}),
				BackendTLS:         &tls.Config{RootCAs: tc.roots.RootCAs},
				AllowPlaintextAuth: true,
			}})
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			if l := c.cmd("PASS pw"); l != tc.want {
				t.Fatalf("login: %q, want %q", l, tc.want)
			}
			if got := f.commands(0); strings.Join(got, "|") != strings.Join(tc.wantCmd, "|") {
				t.Fatalf("backend got %q, want %q", got, tc.wantCmd)
			}
		})
	}
}

// TestOAuthRelay: XOAUTH2 goes to the backend rebuilt around the decided
// name; the backend's error challenge reaches the client, whose answer
// goes back, and the backend's refusal is relayed.
func TestOAuthRelay(t *testing.T) {
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN XOAUTH2"}, oauthError: b64(`{"status":"401"}`)})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr + "?client_addr=none"}}),
		AllowPlaintextAuth: true, OAuth: true,
	}})
	c := dial(t, "", p.addr)
	msg := b64("user=alice@a.test\x01auth=Bearer tok\x01\x01")
	if l := c.cmd("AUTH XOAUTH2 " + msg); l != "+ "+b64(`{"status":"401"}`) {
		t.Fatalf("challenge: %q", l)
	}
	if l := c.cmd(""); l != "-ERR [AUTH] Invalid token" {
		t.Fatalf("after the challenge: %q", l)
	}
	if got := strings.Join(f.commands(0), "|"); got != "CAPA|AUTH XOAUTH2 "+msg+"|" {
		t.Fatalf("backend got %q", got)
	}
}

// TestOAuthRelayCancel: "*" in answer to a backend's relayed challenge
// cancels, and an answer that is not base64 is refused, as in the proxy's
// own exchanges: the backend gets "*" in its place. The challenge was the
// backend's refusal of the token, so each is a failed login, counted in
// the address's penalty.
func TestOAuthRelayCancel(t *testing.T) {
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN XOAUTH2"}, oauthError: b64(`{"status":"401"}`)})
	store := limit.NewMemoryStore(0)
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr + "?client_addr=none"}}),
		AllowPlaintextAuth: true, OAuth: true, MaxLoginFailures: 3, FailureDelay: -1,
		Penalty: &limit.Penalty{Store: store, Base: 1, Max: 1},
	}})
	c := dial(t, "", p.addr)
	msg := b64("user=alice@a.test\x01auth=Bearer tok\x01\x01")
	for i, tc := range []struct{ answer, want string }{
		{"*", "-ERR Authentication cancelled"},
		{"not base64!", "-ERR Invalid base64 data"},
	} {
		token := msg // then another: the same one refused again would not raise the penalty
		if i > 0 {
			token = b64("user=alice@a.test\x01auth=Bearer tok2\x01\x01")
		}
		if l := c.cmd("AUTH XOAUTH2 " + token); l != "+ "+b64(`{"status":"401"}`) {
			t.Fatalf("challenge: %q", l)
		}
		if l := c.cmd(tc.answer); l != tc.want {
			t.Errorf("answer %q: %q, want %q", tc.answer, l, tc.want)
		}
	}
	if got := strings.Join(f.commands(0), "|"); got != "CAPA|AUTH XOAUTH2 "+msg+"|*" {
		t.Errorf("first backend got %q", got)
	}
	if l := c.cmd("NOOP"); !strings.HasPrefix(l, "-ERR") || strings.Contains(l, "[AUTH]") {
		t.Errorf("after two cancels (three failures allowed): %q", l)
	}
	if n, err := store.Failures(context.Background(), "ip:127.0.0.1/32"); n != 2 || err != nil {
		t.Errorf("penalty count after two cancelled logins: %d, %v; want 2", n, err)
	}
}

// TestRefuseOverLimit: a connection over MaxPreLoginPerIP is told so in
// POP3's form before any greeting.
func TestRefuseOverLimit(t *testing.T) {
	p := startProxy(t, &pop3.Server{Server: gateway.Server{Router: routes(t, nil), MaxPreLoginPerIP: 1}})
	dial(t, "", p.addr)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	if got := string(b); got != "-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n" {
		t.Fatalf("got %q", got)
	}
}
