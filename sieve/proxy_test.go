package sieve_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/limit"
	"github.com/pipegate/pipegate/sieve"
	"github.com/pipegate/pipegate/sieve/wire"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fakeProxy is a proxy in front of a fake backend, with plaintext logins
// allowed and STARTTLS offered.
func fakeProxy(t *testing.T, mutate func(*sieve.Server)) (addr string, r *countingRouter, f *fakeBackend) {
	t.Helper()
	f, err := newFakeBackend()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	r = newRouter(t, "sieve://"+f.Addr())
	srv := &sieve.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true, TLSConfig: newPKI(t).server}}
	if mutate != nil {
		mutate(srv)
	}
	return startProxy(t, srv), r, f
}

func TestGreetingAndCommands(t *testing.T) {
	addr, r, _ := fakeProxy(t, func(s *sieve.Server) { s.Implementation = "Example Sieve" })
	c, greeting := dial(t, "", addr)
	want := "\"IMPLEMENTATION\" \"Example Sieve\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n" +
		"\"SIEVE\" \"" + sieve.DefaultCapabilities[0].Value + "\"\r\n\"NOTIFY\" \"mailto\"\r\n" +
		"\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"pipegate ManageSieve proxy ready\"\r\n"
	if greeting != want {
		t.Fatalf("greeting\n%q\nwant\n%q", greeting, want)
	}
	c.send("CAPABILITY\r\n")
	if got := c.response("OK"); got != strings.Replace(want, "OK \"pipegate ManageSieve proxy ready\"", "OK \"Capability completed.\"", 1) {
		t.Errorf("CAPABILITY:\n%s", got)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"NOOP", "OK \"NOOP completed.\"\r\n"},
		{`NOOP "STARTTLS-RESYNC-CAPA"`, "OK (TAG \"STARTTLS-RESYNC-CAPA\") \"NOOP completed.\"\r\n"},
		{"NOOP {3+}\r\nabc", "OK (TAG \"abc\") \"NOOP completed.\"\r\n"},
		{"LISTSCRIPTS", "NO \"LISTSCRIPTS is not allowed before login, AUTHENTICATE first\"\r\n"},
		{"PUTSCRIPT \"x\" {4+}\r\nkeep", "NO \"PUTSCRIPT is not allowed before login, AUTHENTICATE first\"\r\n"},
		{"XCLIENT ADDR=10.9.9.9", "NO \"Unknown command XCLIENT\"\r\n"},
		{"FROB", "NO \"Unknown command FROB\"\r\n"},
		{`NOOP "unterminated`, "NO \"Unterminated quoted string\"\r\n"},
		{`AUTHENTICATE "CRAM-MD5"`, "NO \"Unsupported authentication mechanism CRAM-MD5\"\r\n"},
		{"AUTHENTICATE \"pla\u0131n\"", "NO \"Unsupported authentication mechanism PLA\u0131N\"\r\n"},
		{`AUTHENTICATE PLAIN`, "NO \"AUTHENTICATE: argument 1 is an atom, want a string\"\r\n"},
		{`AUTHENTICATE "PLAIN" "%%%"`, "NO \"Invalid base64 in SASL response\"\r\n"},
		{`AUTHENTICATE "PLAIN"` + "\r\n\"*\"", "\"\"\r\nNO \"Authentication cancelled.\"\r\n"},
	} {
		c.send(tc.cmd + "\r\n")
		if got, _ := c.status(); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.cmd, got, tc.want)
		}
	}
	c.send("LOGOUT\r\n")
	if got := c.line(); got != "OK \"Logout completed.\"\r\n" {
		t.Errorf("LOGOUT: %q", got)
	}
	if rest := c.expectClosed(); rest != "" {
		t.Errorf("after LOGOUT: %q", rest)
	}
	if n := r.lookups.Load(); n != 0 {
		t.Errorf("%d route lookups, want none", n)
	}
}

// TestLogin logs in through the proxy to the fake backend with the
// initial response as a quoted string, as a literal, and in a
// continuation, and with LOGIN; the backend gets XCLIENT first and the
// client's commands after the login go to it.
func TestLogin(t *testing.T) {
	plain := b64("\x00alice@a.test\x00secret")
	for _, tc := range []struct{ name, send, challenges string }{
		{"quoted", `AUTHENTICATE "PLAIN" "` + plain + "\"\r\n", ""},
		{"literal", fmt.Sprintf("AUTHENTICATE \"PLAIN\" {%d+}\r\n%s\r\n", len(plain), plain), ""},
		{"sync literal", fmt.Sprintf("AUTHENTICATE \"plain\" {%d}\r\n%s\r\n", len(plain), plain), ""},
		{"continuation", "AUTHENTICATE \"PLAIN\"\r\n\"" + plain + "\"\r\n", "\"\"\r\n"},
		{"continuation literal", fmt.Sprintf("AUTHENTICATE \"PLAIN\"\r\n{%d+}\r\n%s\r\n", len(plain), plain), "\"\"\r\n"},
		{"login", "AUTHENTICATE \"LOGIN\"\r\n\"" + b64("alice@a.test") + "\"\r\n{8+}\r\n" + b64("secret") + "\r\n",
			"\"" + b64("Username:") + "\"\r\n\"" + b64("Password:") + "\"\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, r, f := fakeProxy(t, nil)
			c, _ := dial(t, "127.0.0.2", addr)
			// The whole exchange and a command after it in one write: the
			// proxy must not read past the login.
			c.send(tc.send + "NOOP\r\n")
			want := tc.challenges + "OK \"Logged in.\"\r\n"
			if got := c.response("OK"); got != want {
				t.Fatalf("login: got %q, want %q", got, want)
			}
			if got := c.line(); got != "OK \"NOOP from the backend\"\r\n" {
				t.Errorf("after login: %q", got)
			}
			if acc := <-r.accounts; acc != "alice@a.test" {
				t.Errorf("routed %q", acc)
			}
			xc := f.xclients()
			if len(xc) != 1 || !strings.HasPrefix(xc[0], "ADDR=127.0.0.2 PORT=") || !strings.Contains(xc[0], " SESSION=") ||
				!strings.HasSuffix(xc[0], fmt.Sprintf(" TTL=%d", gateway.DefaultProxyTTL-1)) {
				t.Errorf("XCLIENT lines %q", xc)
			}
		})
	}
}

// TestLoginRefused: a wrong password and an unknown account get the same
// plain NO; the third failure ends the session with BYE.
func TestLoginRefused(t *testing.T) {
	addr, _, _ := fakeProxy(t, nil)
	c, _ := dial(t, "", addr)
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00wrong") + "\"\r\n")
	if got := c.line(); got != "NO \"Authentication failed.\"\r\n" {
		t.Errorf("wrong password: %q", got)
	}
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00bob@b.test\x00pw") + "\"\r\n")
	if got := c.line(); got != "NO \"Authentication failed.\"\r\n" {
		t.Errorf("unknown account: %q", got)
	}
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00wrong") + "\"\r\n")
	if got := c.line(); got != "NO \"Authentication failed.\"\r\n" {
		t.Errorf("third failure: %q", got)
	}
	if got := c.line(); got != "BYE \"Too many invalid authentication attempts\"\r\n" {
		t.Errorf("after the third failure: %q", got)
	}
	c.expectClosed()
}

// TestUnavailable: a backend that is down gives NO (TRYLATER).
func TestUnavailable(t *testing.T) {
	r := newRouter(t, "sieve://127.0.0.1:1")
	addr := startProxy(t, &sieve.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c, _ := dial(t, "", addr)
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00secret") + "\"\r\n")
	if got := c.line(); got != "NO (TRYLATER) \""+gateway.TextUnavailable+"\"\r\n" {
		t.Errorf("got %q", got)
	}
}

// TestNamesRefusedBeforeRouting: NUL, CR or LF in a name or password is
// refused with NO before any route lookup, whichever way it comes (issue
// 17: the name routed is the name the backend logs in).
func TestNamesRefusedBeforeRouting(t *testing.T) {
	addr, r, _ := fakeProxy(t, func(s *sieve.Server) { s.MaxLoginFailures = 100 })
	c, _ := dial(t, "", addr)
	for _, tc := range []struct{ name, send string }{
		{"plain NUL split", `AUTHENTICATE "PLAIN" "` + b64("\x00bob@a.test\x00alice@a.test\x00secret") + "\"\r\n"},
		{"plain CRLF in name", `AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\r\nx\x00secret") + "\"\r\n"},
		{"plain LF in password", `AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00sec\nret") + "\"\r\n"},
		{"plain authzid of another", `AUTHENTICATE "PLAIN" "` + b64("bob@a.test\x00alice@a.test\x00secret") + "\"\r\n"},
		{"login NUL in name", "AUTHENTICATE \"LOGIN\" \"" + b64("bob@a.test\x00alice@a.test") + "\"\r\n\"" + b64("secret") + "\"\r\n"},
		{"login NUL in password", "AUTHENTICATE \"LOGIN\"\r\n\"" + b64("alice@a.test") + "\"\r\n\"" + b64("sec\x00ret") + "\"\r\n"},
		{"continuation CR in name", "AUTHENTICATE \"PLAIN\"\r\n\"" + b64("\x00alice@a.test\r\x00secret") + "\"\r\n"},
	} {
		c.send(tc.send)
		got, final := c.status()
		if final != "NO" || !strings.HasPrefix(got[strings.LastIndex(got, "NO"):], "NO \"") {
			t.Errorf("%s: got %q, want NO", tc.name, got)
		}
	}
	if n := r.lookups.Load(); n != 0 {
		t.Errorf("%d route lookups, want none", n)
	}
}

// TestPlaintextRefused: without TLS and AllowPlaintextAuth, SASL is empty
// and AUTHENTICATE is answered NO (ENCRYPT-NEEDED); after STARTTLS the
// capabilities are sent again, unasked, with the mechanisms, and the login
// works.
func TestPlaintextRefused(t *testing.T) {
	pki := newPKI(t)
	addr, r, _ := fakeProxy(t, func(s *sieve.Server) { s.AllowPlaintextAuth = false; s.TLSConfig = pki.server })
	c, greeting := dial(t, "", addr)
	if !strings.Contains(greeting, "\"SASL\" \"\"\r\n") || !strings.Contains(greeting, "\"STARTTLS\"\r\n") {
		t.Errorf("plain greeting:\n%s", greeting)
	}
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00secret") + "\"\r\n")
	if got := c.line(); got != "NO (ENCRYPT-NEEDED) \"Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\"\r\n" {
		t.Errorf("plaintext AUTHENTICATE: %q", got)
	}
	if n := r.lookups.Load(); n != 0 {
		t.Errorf("%d route lookups, want none", n)
	}
	c.send("STARTTLS\r\n")
	if got := c.line(); got != "OK \"Begin TLS negotiation now.\"\r\n" {
		t.Fatalf("STARTTLS: %q", got)
	}
	c.startTLS(pki.client)
	caps := c.response("OK")
	if !strings.Contains(caps, "\"SASL\" \"PLAIN LOGIN\"\r\n") || strings.Contains(caps, "STARTTLS\"") ||
		!strings.HasSuffix(caps, "OK \"TLS negotiation successful.\"\r\n") {
		t.Errorf("capabilities after STARTTLS:\n%s", caps)
	}
	c.send("STARTTLS\r\n")
	if got := c.line(); got != "NO \"TLS is already active\"\r\n" {
		t.Errorf("second STARTTLS: %q", got)
	}
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00secret") + "\"\r\n")
	c.response("OK")
}

// TestStartTLSPipelined: commands sent in the same write as STARTTLS are
// never executed: they go into the TLS handshake, which fails.
func TestStartTLSPipelined(t *testing.T) {
	addr, r, _ := fakeProxy(t, nil)
	c, _ := dial(t, "", addr)
	c.send("STARTTLS\r\nAUTHENTICATE \"PLAIN\" \"" + b64("\x00alice@a.test\x00secret") + "\"\r\nCAPABILITY\r\n")
	if got := c.line(); got != "OK \"Begin TLS negotiation now.\"\r\n" {
		t.Fatalf("STARTTLS: %q", got)
	}
	if rest := c.expectClosed(); rest != "" && !strings.HasPrefix(rest, "\x15") { // at most a TLS alert
		t.Errorf("after pipelined STARTTLS: %q", rest)
	}
	if n := r.lookups.Load(); n != 0 {
		t.Errorf("%d route lookups, want none: the pipelined AUTHENTICATE ran", n)
	}
}

// TestTooLong: an over-long line or literal is answered at once with BYE,
// without waiting for the rest.
func TestTooLong(t *testing.T) {
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) { s.MaxLineLength = 100; s.MaxLiteral = 50 })
	for _, send := range []string{
		"NOOP \"" + strings.Repeat("a", 200), // no line end: must not wait for one
		"AUTHENTICATE \"PLAIN\" {51+}\r\n",
	} {
		c, _ := dial(t, "", addr)
		c.send(send)
		if got := c.line(); !strings.HasPrefix(got, "BYE \"") {
			t.Errorf("%.20q...: got %q, want BYE", send, got)
		}
		c.expectClosed()
	}
}

// TestTooManyCommands ends a session that only talks.
func TestTooManyCommands(t *testing.T) {
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) { s.MaxCommandsBeforeLogin = 3 })
	c, _ := dial(t, "", addr)
	c.send("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n")
	for range 3 {
		c.response("OK")
	}
	if got := c.line(); got != "BYE \"Too many commands before login\"\r\n" {
		t.Errorf("got %q", got)
	}
}

// TestCapabilitiesOption: configured capabilities replace the default
// ones; the proxy's own are never duplicated, and values cannot break
// lines.
func TestCapabilitiesOption(t *testing.T) {
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) {
		s.TLSConfig = nil
		s.Capabilities = wire.Capabilities{{Name: "sieve", Value: "fileinto\r\nOK"}, {Name: "SASL", Value: "EXTERNAL"}, {Name: "MAXREDIRECTS", Value: "4"}}
	})
	_, greeting := dial(t, "", addr)
	want := "\"IMPLEMENTATION\" \"pipegate\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"SIEVE\" \"fileinto  OK\"\r\n" +
		"\"MAXREDIRECTS\" \"4\"\r\n\"VERSION\" \"1.0\"\r\nOK \"pipegate ManageSieve proxy ready\"\r\n"
	if greeting != want {
		t.Errorf("greeting\n%q\nwant\n%q", greeting, want)
	}
}

// TestOAuthRelay: an XOAUTH2 login goes to the backend as XOAUTH2, and
// the backend's challenge (its error) is relayed to the client and the
// client's answer back.
func TestOAuthRelay(t *testing.T) {
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) { s.OAuth = true })
	c, greeting := dial(t, "", addr)
	if !strings.Contains(greeting, "\"SASL\" \"PLAIN LOGIN XOAUTH2 OAUTHBEARER\"\r\n") {
		t.Errorf("greeting:\n%s", greeting)
	}
	c.send(`AUTHENTICATE "XOAUTH2" "` + b64("user=alice@a.test\x01auth=Bearer bad\x01\x01") + "\"\r\n")
	if got, want := c.line(), "\""+b64(`{"status":"401"}`)+"\"\r\n"; got != want {
		t.Fatalf("challenge %q, want %q", got, want)
	}
	c.send("\"\"\r\n")
	if got := c.line(); got != "NO \"Authentication failed.\"\r\n" {
		t.Errorf("bad token: %q", got)
	}
	c.send(`AUTHENTICATE "XOAUTH2" "` + b64("user=alice@a.test\x01auth=Bearer good\x01\x01") + "\"\r\nNOOP\r\n")
	c.response("OK")
	if got := c.line(); got != "OK \"NOOP from the backend\"\r\n" {
		t.Errorf("after login: %q", got)
	}
}

// TestOAuthRelayCancel: "*" in answer to a backend's relayed challenge
// cancels, and an answer that is not base64 is refused, as in the proxy's
// own exchanges. The challenge was the backend's refusal of the token, so
// each is a failed login, counted in the address's penalty.
func TestOAuthRelayCancel(t *testing.T) {
	store := limit.NewMemoryStore(0)
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) {
		s.OAuth, s.MaxLoginFailures, s.FailureDelay = true, 3, -1
		s.Penalty = &limit.Penalty{Store: store, Base: 1, Max: 1}
	})
	c, _ := dial(t, "", addr)
	for i, tc := range []struct{ answer, want string }{
		{`"*"`, "NO \"Authentication cancelled.\"\r\n"},
		{`"not base64!"`, "NO \"Invalid base64 in SASL response\"\r\n"},
	} {
		// A token of its own each time: the same one refused again would
		// not raise the penalty.
		c.send(`AUTHENTICATE "XOAUTH2" "` + b64(fmt.Sprintf("user=alice@a.test\x01auth=Bearer bad%d\x01\x01", i)) + "\"\r\n")
		if got, want := c.line(), "\""+b64(`{"status":"401"}`)+"\"\r\n"; got != want {
			t.Fatalf("challenge %q, want %q", got, want)
		}
		c.send(tc.answer + "\r\n")
		if got := c.line(); got != tc.want {
			t.Errorf("answer %s: %q, want %q", tc.answer, got, tc.want)
		}
	}
	c.send("NOOP\r\n")
	c.response("OK")
	if n, err := store.Failures(context.Background(), "ip:127.0.0.1/32"); n != 2 || err != nil {
		t.Errorf("penalty count after two cancelled logins: %d, %v; want 2", n, err)
	}
}

// TestFailover: a backend that is down is skipped for the next one.
func TestFailover(t *testing.T) {
	f, err := newFakeBackend()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	r := newRouter(t, "sieve://127.0.0.1:1", "sieve://"+f.Addr()+"?client_addr=none")
	addr := startProxy(t, &sieve.Server{Server: gateway.Server{Router: r, AllowPlaintextAuth: true}})
	c, _ := dial(t, "", addr)
	c.send(`AUTHENTICATE "PLAIN" "` + b64("\x00alice@a.test\x00secret") + "\"\r\n")
	c.response("OK")
	if xc := f.xclients(); len(xc) != 0 {
		t.Errorf("XCLIENT sent with client_addr=none: %q", xc)
	}
}

// TestShutdown: a client waiting before login is told BYE.
func TestShutdown(t *testing.T) {
	srv := &sieve.Server{Server: gateway.Server{Router: newRouter(t)}}
	addr := startProxy(t, srv)
	c, _ := dial(t, "", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	if got := c.line(); got != "BYE \"Server shutting down\"\r\n" {
		t.Errorf("got %q", got)
	}
	c.expectClosed()
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestPreLoginLimit: a client over the per-address limit of connections
// before login is told BYE (TRYLATER) before any greeting.
func TestPreLoginLimit(t *testing.T) {
	addr, _, _ := fakeProxy(t, func(s *sieve.Server) { s.MaxPreLoginPerIP = 1 })
	dial(t, "", addr)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	if got := string(b); got != "BYE (TRYLATER) \"Too many connections from your address, try again later\"\r\n" {
		t.Errorf("got %q", got)
	}
}
