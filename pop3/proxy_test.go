package pop3_test

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/pop3"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestBackendDialogue: what the proxy says to a backend, for the
// backend's capabilities and the route's client_addr, and that the client
// is logged in and piped either way.
func TestBackendDialogue(t *testing.T) {
	users := map[string]string{"alice@a.test": "open sesame"}
	plain := "AUTH PLAIN " + b64("\x00alice@a.test\x00open sesame")
	xclient := `XCLIENT ADDR=127\.0\.0\.1 PORT=\d+ SESSION=[0-9a-f]{16} TTL=4`
	for _, tc := range []struct {
		name  string
		opts  fakeOpts
		query string   // backend URL parameters
		login []string // client lines up to the login
		want  []string // regexps of the backend's commands before login
	}{
		{
			name:  "Dovecot-like: XCLIENT and AUTH PLAIN in one write",
			opts:  fakeOpts{greeting: "+OK [XCLIENT] Dovecot ready.", caps: []string{"RESP-CODES", "PIPELINING", "USER", "SASL PLAIN LOGIN"}},
			login: []string{"USER alice@a.test", "PASS open sesame"},
			want:  []string{"CAPA", xclient, regexp.QuoteMeta(plain)},
		},
		{
			name:  "AUTH LOGIN from the client, AUTH PLAIN to the backend",
			opts:  fakeOpts{greeting: "+OK [XCLIENT] ready", caps: []string{"SASL PLAIN"}},
			login: []string{"AUTH LOGIN " + b64("alice@a.test"), b64("open sesame")},
			want:  []string{"CAPA", xclient, regexp.QuoteMeta(plain)},
		},
		{
			name:  "no SASL PLAIN, no PIPELINING: USER and PASS",
			opts:  fakeOpts{greeting: "+OK [XCLIENT] ready", caps: []string{"USER"}},
			login: []string{"AUTH PLAIN " + b64("\x00alice@a.test\x00open sesame")},
			want:  []string{"CAPA", xclient, "USER alice@a.test", "PASS open sesame"},
		},
		{
			name:  "no CAPA at all (RFC 1939 only)",
			opts:  fakeOpts{},
			login: []string{"USER alice@a.test", "PASS open sesame"},
			want:  []string{"CAPA", "USER alice@a.test", "PASS open sesame"},
		},
		{
			name:  "XCLIENT in CAPA",
			opts:  fakeOpts{caps: []string{"XCLIENT", "PIPELINING"}},
			login: []string{"USER alice@a.test", "PASS open sesame"},
			want:  []string{"CAPA", xclient, "USER alice@a.test", "PASS open sesame"},
		},
		{
			name:  "XCLIENT ignored by an untrusting backend",
			opts:  fakeOpts{caps: []string{"XCLIENT", "SASL PLAIN"}, xclientAnswer: "+OK You are not from trusted IP - ignoring"},
			login: []string{"USER alice@a.test", "PASS open sesame"},
			want:  []string{"CAPA", xclient, regexp.QuoteMeta(plain)},
		},
		{
			name:  "XCLIENT refused",
			opts:  fakeOpts{caps: []string{"XCLIENT", "SASL PLAIN", "PIPELINING"}, xclientAnswer: "-ERR no"},
			login: []string{"USER alice@a.test", "PASS open sesame"},
			want:  []string{"CAPA", xclient, regexp.QuoteMeta(plain)},
		},
		{
			name:  "client_addr=none",
			opts:  fakeOpts{greeting: "+OK [XCLIENT] ready", caps: []string{"SASL PLAIN"}},
			query: "?client_addr=none",
			login: []string{"USER alice@a.test", "PASS open sesame"},
			want:  []string{"CAPA", regexp.QuoteMeta(plain)},
		},
		{
			name:  "a long password goes after the backend's +",
			opts:  fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": strings.Repeat("p", 200)}},
			login: []string{"USER alice@a.test", "PASS " + strings.Repeat("p", 200)},
			want:  []string{"CAPA", "AUTH PLAIN", regexp.QuoteMeta(b64("\x00alice@a.test\x00" + strings.Repeat("p", 200)))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.users == nil {
				tc.opts.users = users
			}
			f := startFake(t, tc.opts)
			p := startProxy(t, &pop3.Server{Server: gateway.Server{
				Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr + tc.query}}),
				AllowPlaintextAuth: true,
			}})
			c := dial(t, "", p.addr)
			for _, l := range tc.login[:len(tc.login)-1] {
				c.send(l + "\r\n")
				c.expect("+")
			}
			if l := c.cmd(tc.login[len(tc.login)-1]); l != "+OK Logged in." {
				t.Fatalf("login: %q", l)
			}
			if l := c.cmd("STAT"); l != "+OK 2 320" {
				t.Fatalf("STAT through the pipe: %q", l)
			}
			got := f.commands(0)
			if len(got) != len(tc.want) {
				t.Fatalf("backend got %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !regexp.MustCompile("^" + w + "$").MatchString(got[i]) {
					t.Fatalf("backend command %d: %q, want %q (all: %q)", i, got[i], w, got)
				}
			}
		})
	}
}

// TestControlInPassword: a password with a control character (which AUTH
// PLAIN carries, and USER/PASS cannot: RFC 2449 params are VCHAR) goes to
// a backend without SASL PLAIN as nothing at all: the login is refused
// with [AUTH] and a reason, and the backend sees no USER or PASS.
func TestControlInPassword(t *testing.T) {
	f := startFake(t, fakeOpts{caps: []string{"USER"}, users: map[string]string{"alice@a.test": "p\aw"}})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr + "?client_addr=none"}}),
		AllowPlaintextAuth: true, FailureDelay: -1,
	}})
	c := dial(t, "", p.addr)
	l := c.cmd("AUTH PLAIN " + b64("\x00alice@a.test\x00p\aw"))
	if !strings.HasPrefix(l, "-ERR [AUTH] Invalid characters in the name or password") {
		t.Fatalf("login: %q", l)
	}
	for _, cmd := range f.commands(0) {
		if strings.HasPrefix(cmd, "USER") || strings.HasPrefix(cmd, "PASS") {
			t.Fatalf("the backend got %q", cmd)
		}
	}
}

// TestResponseCodes: a backend's refusal reaches the client in one form:
// [AUTH] by default, the backend's own POP3 code relayed, [SYS/TEMP] (the
// gateway's text) when the backend is in trouble. [IN-USE] and
// [LOGIN-DELAY] say the credentials were right (RFC 2449 section 8): they
// are relayed without going through the failure path (no penalty, no
// delay, no failure counted).
func TestResponseCodes(t *testing.T) {
	for _, tc := range []struct {
		answer, want string
		failure      bool // went through the failure path
	}{
		{"-ERR [AUTH] Authentication failed.", "-ERR [AUTH] Authentication failed.", true},
		{"-ERR wrong", "-ERR [AUTH] wrong", true},
		{"-ERR", "-ERR [AUTH] Authentication failed.", true},
		{"-ERR [IN-USE] Mailbox is locked", "-ERR [IN-USE] Mailbox is locked", false},
		{"-ERR [LOGIN-DELAY] Logged in too recently", "-ERR [LOGIN-DELAY] Logged in too recently", false},
		{"-ERR [SYS/PERM] Account disabled", "-ERR [SYS/PERM] Account disabled", true},
		{"-ERR [AUTHENTICATIONFAILED] an IMAP code", "-ERR [AUTH] an IMAP code", true},
		{"-ERR [SYS/TEMP] Temporary authentication failure.", "-ERR [SYS/TEMP] " + gateway.TextUnavailable, false},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, loginAnswer: tc.answer})
			var failures atomic.Int32
			p := startProxy(t, &pop3.Server{Server: gateway.Server{
				Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr}}),
				AllowPlaintextAuth: true,
				FailureDelay:       time.Second,
				FailureSleep:       func(context.Context, time.Duration) bool { failures.Add(1); return true },
			}})
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			if l := c.cmd("PASS pw"); l != tc.want {
				t.Fatalf("got %q, want %q", l, tc.want)
			}
			if got := failures.Load() == 1; got != tc.failure {
				t.Fatalf("through the failure path: %v, want %v", got, tc.failure)
			}
		})
	}
}

// TestPipelinedAfterLogin: with PIPELINING a client sends its login and
// its first commands at once; what follows PASS reaches the backend, and
// a CAPA after login is the backend's.
func TestPipelinedAfterLogin(t *testing.T) {
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN", "PIPELINING"}, users: map[string]string{"alice@a.test": "pw"}})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr}}),
		AllowPlaintextAuth: true,
	}})
	c := dial(t, "", p.addr)
	if caps := c.multi("CAPA"); !contains(caps, "PIPELINING") || contains(caps, "BACKEND-AFTER-LOGIN") {
		t.Fatalf("pre-login CAPA: %q", caps)
	}
	c.send("USER alice@a.test\r\nPASS pw\r\nSTAT\r\nCAPA\r\n")
	c.expect("+OK Send the password")
	c.expect("+OK Logged in.")
	c.expect("+OK 2 320")
	c.expect("+OK")
	if caps := []string{c.line(), c.line(), c.line()}; caps[2] != "BACKEND-AFTER-LOGIN" {
		t.Fatalf("CAPA after login: %q", caps)
	}
	c.expect(".")
	c.send("QUIT\r\n")
	c.expect("+OK bye")
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// TestClientDialogue: the pre-login dialogue, line by line.
func TestClientDialogue(t *testing.T) {
	pki := newPKI(t)
	f := startFake(t, fakeOpts{caps: []string{"SASL PLAIN"}, users: map[string]string{"alice@a.test": "pw"}})
	type step struct{ send, want string } // want: the answer's first line, "" for none
	for _, tc := range []struct {
		name      string
		plaintext bool
		oauth     bool
		steps     []step
		closed    bool // the proxy closes after the steps
	}{
		{name: "plaintext refused", steps: []step{
			{"USER alice@a.test", "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections"},
			{"PASS pw", "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections"},
			{"AUTH PLAIN " + b64("\x00alice@a.test\x00pw"), "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections"},
		}},
		{name: "unknown and transaction commands", plaintext: true, steps: []step{
			{"STAT", "-ERR STAT is not allowed before login"},
			{"RETR 1", "-ERR RETR is not allowed before login"},
			{"APOP alice@a.test 0123456789abcdef0123456789abcdef", "-ERR APOP is not supported, use USER/PASS or AUTH"},
			{"XCLIENT ADDR=10.0.0.1", "-ERR Invalid command keyword"},
			{"XYZ", "-ERR Unknown command XYZ"},
			{"", "-ERR Empty command"},
			{"CAPA x", "-ERR CAPA takes no arguments"},
		}},
		{name: "PASS without USER", plaintext: true, steps: []step{{"PASS pw", "-ERR No user name given, send USER first"}}},
		{name: "AUTH cancelled", plaintext: true, steps: []step{{"AUTH PLAIN", "+ "}, {"*", "-ERR Authentication cancelled"}}},
		{name: "AUTH bad base64", plaintext: true, steps: []step{{"AUTH PLAIN", "+ "}, {"%%%", "-ERR Invalid base64 data"}}},
		{name: "AUTH unknown mechanism", plaintext: true, steps: []step{{"AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism"}}},
		{name: "AUTH mechanism with a dotless i", plaintext: true, steps: []step{{"AUTH pla\u0131n " + b64("\x00alice\x00pw"), "-ERR Unsupported authentication mechanism"}}},
		{name: "AUTH XOAUTH2 without OAuth", plaintext: true, steps: []step{{"AUTH XOAUTH2 " + b64("user=a\x01\x01"), "-ERR Unsupported authentication mechanism"}}},
		{name: "AUTH PLAIN continuation", plaintext: true, steps: []step{{"AUTH PLAIN", "+ "}, {b64("\x00alice@a.test\x00pw"), "+OK Logged in."}}},
		{name: "AUTH PLAIN empty initial response", plaintext: true, steps: []step{{"AUTH PLAIN =", "-ERR [AUTH] Invalid PLAIN message"}}},
		{name: "QUIT", steps: []step{{"QUIT", "+OK Logging out"}}, closed: true},
		{name: "too many failures", plaintext: true, steps: []step{
			{"USER alice@a.test", "+OK"}, {"PASS x", "-ERR [AUTH] Authentication failed."},
			{"USER alice@a.test", "+OK"}, {"PASS x", "-ERR [AUTH] Authentication failed."},
			{"USER alice@a.test", "+OK"}, {"PASS x", "-ERR [AUTH] Authentication failed."},
		}, closed: true},
		{name: "STLS twice", steps: []step{{"STLS", "+OK Begin TLS negotiation now."}, {"", "tls"}, {"STLS", "-ERR TLS is already active"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, &pop3.Server{Server: gateway.Server{
				Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + f.addr}}),
				TLSConfig:          pki.server,
				AllowPlaintextAuth: tc.plaintext,
				OAuth:              tc.oauth,
			}})
			c := dial(t, "", p.addr)
			for _, s := range tc.steps {
				if s.want == "tls" {
					c.startTLS(pki.client)
					continue
				}
				if l := c.cmd(s.send); !strings.HasPrefix(l, s.want) {
					t.Fatalf("%q: got %q, want %q", s.send, l, s.want)
				}
			}
			if tc.closed {
				if rest := c.expectClosed(); len(rest) > 0 {
					t.Fatalf("after the last step: %q, want the connection closed", rest)
				}
			}
		})
	}
}

// TestCapabilities: the pre-login CAPA is the gateway's, for the link's
// state; AUTH alone lists the mechanisms.
func TestCapabilities(t *testing.T) {
	pki := newPKI(t)
	p := startProxy(t, &pop3.Server{
		Server: gateway.Server{
			Router:    routes(t, nil),
			TLSConfig: pki.server,
			OAuth:     true,
		},
		Capabilities: []string{"TOP", "UIDL", "USER", "EXPIRE NEVER"},
	})
	c := dial(t, "", p.addr)
	if got, want := strings.Join(c.multi("CAPA"), "|"), "STLS|RESP-CODES|AUTH-RESP-CODE|PIPELINING|TOP|UIDL|EXPIRE NEVER"; got != want {
		t.Fatalf("CAPA on a plain link: %q, want %q", got, want)
	}
	if got := c.multi("AUTH"); len(got) != 0 {
		t.Fatalf("AUTH on a plain link lists %q", got)
	}
	c.send("STLS\r\n")
	c.expect("+OK")
	c.startTLS(pki.client)
	if got, want := strings.Join(c.multi("CAPA"), "|"), "USER|SASL PLAIN LOGIN XOAUTH2 OAUTHBEARER|RESP-CODES|AUTH-RESP-CODE|PIPELINING|TOP|UIDL|EXPIRE NEVER"; got != want {
		t.Fatalf("CAPA after STLS: %q, want %q", got, want)
	}
	if got, want := strings.Join(c.multi("AUTH"), "|"), "PLAIN|LOGIN|XOAUTH2|OAUTHBEARER"; got != want {
		t.Fatalf("AUTH after STLS: %q, want %q", got, want)
	}
}
