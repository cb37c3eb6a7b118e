package pop3_test

import (
	"crypto/tls"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/pop3"
)

// TestCyrus runs the proxy in front of a real Cyrus pop3d 3.6 (users in
// its sasldb, virtual domains, messages delivered by LMTP first). Cyrus
// takes no XCLIENT: pipegate sends none, and Cyrus sees the proxy's
// address. Clients connect from their own loopback addresses.
func TestCyrus(t *testing.T) {
	pki := newPKI(t)
	cert, key := pki.ca.Issue(t, "127.0.0.1", "localhost")
	cy := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users: map[string]string{"alice@a.test": "secret", "bob@a.test": "pw-bob"},
		Messages: map[string][]string{"alice@a.test": {
			"Subject: one\r\n\r\nhello\r\n",
			"Subject: two\r\n\r\n.dot-stuffed\r\n",
		}},
		CertFile: cert, KeyFile: key,
	})
	logs := gatewaytest.NewLogs(t)
	newProxy := func(url string, backendCA *tlstest.CA) *proxy {
		return startProxy(t, &pop3.Server{Server: gateway.Server{
			Router:             routes(t, map[string][]string{"@a.test": {url}}),
			TLSConfig:          pki.server,
			BackendTLS:         &tls.Config{RootCAs: backendCA.Pool()},
			AllowPlaintextAuth: true,
			Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
	}
	p := newProxy("pop3://"+cy.POP3Addr, pki.ca)

	t.Run("USER PASS STAT RETR", func(t *testing.T) {
		c := dial(t, "127.0.0.2", p.addr)
		c.cmd("USER alice@a.test")
		if l := c.cmd("PASS secret"); !strings.HasPrefix(l, "+OK Mailbox locked and ready SESSIONID=<") {
			t.Fatalf("login: %q", l)
		}
		if l := c.cmd("STAT"); !strings.HasPrefix(l, "+OK 2 ") {
			t.Fatalf("STAT: %q", l)
		}
		msg := strings.Join(c.multi("RETR 2"), "\n")
		// Cyrus's LMTP put its lines (Return-Path, Received, ...) first.
		if !strings.HasPrefix(msg, "Return-Path: <sender@pipegate.test>\n") || !strings.Contains(msg, "\nSubject: two\n") || !strings.HasSuffix(msg, "\n\n.dot-stuffed") {
			t.Fatalf("RETR 2: %q", msg)
		}
		// After login CAPA is Cyrus's own.
		caps := c.multi("CAPA")
		cyrusImpl := slices.ContainsFunc(caps, func(l string) bool { return strings.HasPrefix(l, "IMPLEMENTATION Cyrus POP3 ") })
		if !cyrusImpl || contains(caps, "USER") || contains(caps, "STLS") {
			t.Fatalf("CAPA after login is not Cyrus's: %q", caps)
		}
		c.send("QUIT\r\n")
		c.expect("+OK")
		// pipegate turned the client's USER and PASS into AUTH PLAIN: Cyrus
		// lists SASL PLAIN.
		cy.WaitLog(t, `pop3\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test PLAIN User logged in`)
		// Cyrus offers no XCLIENT: nothing was sent.
		logs.Wait(t, "pop3: backend offers no XCLIENT, client address not passed")
	})

	t.Run("AUTH PLAIN", func(t *testing.T) {
		c := dial(t, "127.0.0.3", p.addr)
		if l := c.cmd("AUTH PLAIN " + b64("\x00bob@a.test\x00pw-bob")); !strings.HasPrefix(l, "+OK Mailbox locked and ready") {
			t.Fatalf("initial response: %q", l)
		}
		if l := c.cmd("STAT"); l != "+OK 0 0" {
			t.Fatalf("STAT: %q", l)
		}
		c2 := dial(t, "127.0.0.4", p.addr)
		c2.send("AUTH PLAIN\r\n")
		c2.expect("+ ")
		if l := c2.cmd(b64("\x00alice@a.test\x00secret")); !strings.HasPrefix(l, "+OK Mailbox locked and ready") {
			t.Fatalf("continuation: %q", l)
		}
		if l := c2.cmd("STAT"); !strings.HasPrefix(l, "+OK 2 ") {
			t.Fatalf("STAT: %q", l)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		// Cyrus's own answer to a wrong password in AUTH PLAIN, which is
		// how pipegate logs in to it.
		direct := dial(t, "127.0.0.1", cy.POP3Addr)
		want := direct.cmd("AUTH PLAIN " + b64("\x00alice@a.test\x00wrong"))
		if !strings.HasPrefix(want, "-ERR [AUTH] ") {
			t.Fatalf("Cyrus's own answer: %q", want)
		}
		c := dial(t, "127.0.0.9", p.addr)
		c.cmd("USER alice@a.test")
		if l := c.cmd("PASS wrong"); l != want {
			t.Errorf("wrong password: %q, want Cyrus's %q", l, want)
		}
		if l := c.cmd("AUTH PLAIN " + b64("\x00alice@a.test\x00wrong")); l != want {
			t.Errorf("wrong password in AUTH PLAIN: %q, want Cyrus's %q", l, want)
		}
		c.cmd("USER alice@a.test")
		if l := c.cmd("PASS secret"); !strings.HasPrefix(l, "+OK Mailbox locked and ready") {
			t.Errorf("login after the failures: %q", l)
		}
		cy.WaitLog(t, `pop3\[\d+\]: badlogin: localhost \[127\.0\.0\.1\] PLAIN \(alice@a\.test\) \[authentication failure\]`)
	})

	t.Run("backend STLS and pop3s", func(t *testing.T) {
		for _, url := range []string{"pop3+starttls://" + cy.POP3Addr, "pop3s://" + cy.POP3SAddr} {
			c := dial(t, "127.0.0.5", newProxy(url, pki.ca).addr)
			c.cmd("USER alice@a.test")
			if l := c.cmd("PASS secret"); !strings.HasPrefix(l, "+OK Mailbox locked and ready") {
				t.Fatalf("%s: login: %q", url, l)
			}
			if msg := strings.Join(c.multi("RETR 1"), "\n"); !strings.Contains(msg, "\nSubject: one\n") || !strings.HasSuffix(msg, "\n\nhello") {
				t.Fatalf("%s: RETR 1: %q", url, msg)
			}
		}
		cy.WaitLog(t, `pop3\[\d+\]: starttls: TLSv1\.3 with cipher`)
		cy.WaitLog(t, `pop3s\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test PLAIN\+TLS User logged in`)
	})

	t.Run("backend certificate of an unknown CA", func(t *testing.T) {
		for _, url := range []string{"pop3+starttls://" + cy.POP3Addr, "pop3s://" + cy.POP3SAddr} {
			c := dial(t, "127.0.0.6", newProxy(url, tlstest.NewCA(t)).addr)
			c.cmd("USER bob@a.test")
			if l := c.cmd("PASS pw-bob"); l != "-ERR [SYS/TEMP] "+gateway.TextUnavailable {
				t.Fatalf("%s: login: %q", url, l)
			}
		}
		logs.Wait(t, "certificate signed by unknown authority")
	})

	t.Run("python3 poplib", func(t *testing.T) {
		out := python(t, cyrusPoplib, "CA="+pki.ca.CertFile(t), "PLAIN="+p.addr, "TLS="+p.tlsAddr, "USER=alice@a.test", "PASS=secret")
		if want := "stls 2 b'Subject: one'\npop3s 2 b'Subject: one'\n"; out != want {
			t.Fatalf("poplib printed %q, want %q", out, want)
		}
	})
}

// cyrusPoplib logs in through the proxy with STLS and with pop3s and
// prints the message count and the Subject of message 1 (Cyrus's LMTP
// puts its own header lines before the message's).
const cyrusPoplib = `
import os, poplib, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
def hp(v):
    h, p = v.rsplit(":", 1)
    return h, int(p)
def session(p, via):
    p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
    n = p.stat()[0]
    subject = [l for l in p.retr(1)[1] if l.startswith(b"Subject:")][0]
    print(via, n, subject); p.quit()
p = poplib.POP3(*hp(os.environ["PLAIN"]), timeout=10)
p.stls(context=ctx)
session(p, "stls")
session(poplib.POP3_SSL(*hp(os.environ["TLS"]), context=ctx, timeout=10), "pop3s")
`

// TestCyrusRequireTLS: a Cyrus with its own default, allowplaintext: no,
// takes passwords only over TLS, and says so on a plain connection (its
// CAPA offers STLS, and neither USER nor SASL PLAIN). Routed there with
// pop3://, the login is unavailable (the route is wrong, not the
// password) and nothing is sent; the next backend of the route, the same
// Cyrus with pop3+starttls://, logs the client in.
func TestCyrusRequireTLS(t *testing.T) {
	pki := newPKI(t)
	cert, key := pki.ca.Issue(t, "127.0.0.1", "localhost")
	cy := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users:    map[string]string{"alice@a.test": "secret"},
		CertFile: cert, KeyFile: key,
		RequireTLS: true,
	})
	logs := gatewaytest.NewLogs(t)
	newProxy := func(urls ...string) *proxy {
		return startProxy(t, &pop3.Server{Server: gateway.Server{
			Router:             routes(t, map[string][]string{"@a.test": urls}),
			BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
			AllowPlaintextAuth: true,
			Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
	}
	c := dial(t, "127.0.0.2", newProxy("pop3://"+cy.POP3Addr).addr)
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS secret"); l != "-ERR [SYS/TEMP] "+gateway.TextUnavailable {
		t.Errorf("pop3:// alone: %q", l)
	}
	logs.Wait(t, "pop3+starttls://")

	c = dial(t, "127.0.0.3", newProxy("pop3://"+cy.POP3Addr, "pop3+starttls://"+cy.POP3Addr).addr)
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS secret"); !strings.HasPrefix(l, "+OK Mailbox locked and ready") {
		t.Errorf("pop3:// then pop3+starttls://: %q", l)
	}
	cy.WaitLog(t, `pop3\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test PLAIN\+TLS User logged in`)
	if strings.Contains(cy.Log(), "badlogin") {
		t.Errorf("Cyrus saw a failed login:\n%s", cy.Log())
	}
}
