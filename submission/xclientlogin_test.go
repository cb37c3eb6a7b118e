package submission_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission"
)

// postfixNoSASL is a backend shaped like a Postfix without SASL that
// trusts the proxy's XCLIENT (smtpd_authorized_xclient_hosts =
// 127.0.0.1): EHLO lists XCLIENT (with LOGIN when login is set) and no
// AUTH. As Postfix, it checks its trust again against the address an
// XCLIENT gave: after XCLIENT ADDR= of another client, EHLO lists no
// XCLIENT and a further XCLIENT is refused.
func postfixNoSASL(login bool) func(next func() string, send func(string)) {
	attrs := "NAME ADDR PORT PROTO HELO"
	if login {
		attrs += " LOGIN"
	}
	return func(next func() string, send func(string)) {
		trusted := true
		send("220 fake ESMTP Postfix\r\n")
		for {
			l := next()
			switch {
			case l == "":
				return
			case strings.HasPrefix(l, "EHLO ") && trusted:
				send("250-fake\r\n250-PIPELINING\r\n250 XCLIENT " + attrs + "\r\n")
			case strings.HasPrefix(l, "EHLO "):
				send("250-fake\r\n250 PIPELINING\r\n")
			case strings.HasPrefix(l, "XCLIENT ") && !trusted:
				send("550 5.7.0 Error: insufficient authorization\r\n")
			case strings.HasPrefix(l, "XCLIENT "):
				for _, a := range strings.Fields(l)[1:] {
					if strings.HasPrefix(a, "ADDR=") && a != "ADDR=127.0.0.1" {
						trusted = false
					}
				}
				send("220 fake ESMTP Postfix\r\n")
			case strings.HasPrefix(l, "MAIL FROM:"):
				send("250 2.1.0 Ok\r\n")
			case l == "QUIT":
				send("221 2.0.0 Bye\r\n")
				return
			default:
				send("502 5.5.2 Error: command not recognized\r\n")
			}
		}
	}
}

// TestXClientLogin: with login=xclient, as nginx's default (xclient on,
// proxy_smtp_auth off), a route from an auth_http service that checked
// the password logs the client in at a backend without SASL by XCLIENT
// LOGIN=, and no AUTH is sent; a wrong password is refused by the service
// and nothing reaches the backend's XCLIENT LOGIN; a route whose source
// did not check the password (a file, a cache) is refused as unavailable,
// as is a backend whose XCLIENT does not take LOGIN.
func TestXClientLogin(t *testing.T) {
	plain := func(user, pass string) string {
		return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
	}
	hasPrefix := func(lines []string, p string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, p) })
	}

	t.Run("checked", func(t *testing.T) {
		fb := startFake(t, postfixNoSASL(true))
		p := startProxy(t, &submission.Server{Server: gateway.Server{
			Router: nginxAuthService(t, "submission://"+fb.addr+"?login=xclient"), AllowPlaintextAuth: true, FailureDelay: -1}})
		c := dialRaw(t, "127.0.0.2", p.addr) // not the proxy's address, which the backend trusts
		c.reply()
		c.send("EHLO client.test\r\n")
		c.reply()
		c.cmd(plain("alice@a.test", "wrong"), "535 5.7.8 Invalid login or password")
		c.cmd(plain("alice@a.test", "secret"), "235 2.7.0 Authentication successful")
		c.cmd("MAIL FROM:<alice@a.test>", "250 2.1.0 Ok") // through the pipe
		c.cmd("QUIT", "221 2.0.0 Bye")
		got := fb.lines()
		// One XCLIENT with the client's address and the login: after an
		// XCLIENT ADDR=, Postfix no longer trusts the session for XCLIENT.
		i := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "XCLIENT ") })
		if i < 0 || !strings.Contains(got[i], " ADDR=127.0.0.2 ") || !strings.HasSuffix(got[i], " LOGIN=alice@a.test") {
			t.Fatalf("backend got %q, want one XCLIENT with ADDR=127.0.0.2 and LOGIN=alice@a.test", got)
		}
		if i+1 >= len(got) || got[i+1] != "EHLO client.test" {
			t.Errorf("backend got %q, want EHLO in the client's name after XCLIENT", got)
		}
		if n := len(slices.DeleteFunc(slices.Clone(got), func(l string) bool { return !strings.HasPrefix(l, "XCLIENT ") })); n != 1 {
			t.Errorf("backend got %d XCLIENT commands: %q", n, got)
		}
		if hasPrefix(got, "AUTH") {
			t.Errorf("backend got AUTH: %q", got)
		}
	})
	t.Run("client_addr=none", func(t *testing.T) {
		// No address to pass: XCLIENT LOGIN= alone.
		fb := startFake(t, postfixNoSASL(true))
		p := startProxy(t, &submission.Server{Server: gateway.Server{
			Router: nginxAuthService(t, "submission://"+fb.addr+"?login=xclient&client_addr=none"), AllowPlaintextAuth: true, FailureDelay: -1}})
		c := dialRaw(t, "127.0.0.2", p.addr)
		c.reply()
		c.send("EHLO client.test\r\n")
		c.reply()
		c.cmd(plain("alice@a.test", "secret"), "235 2.7.0 Authentication successful")
		c.cmd("QUIT", "221 2.0.0 Bye")
		if got := fb.lines(); !slices.Contains(got, "XCLIENT LOGIN=alice@a.test") {
			t.Errorf("backend got %q, want XCLIENT LOGIN=alice@a.test", got)
		}
	})
	t.Run("not checked by the source", func(t *testing.T) {
		fb := startFake(t, postfixNoSASL(true))
		rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + fb.addr + "?login=xclient"}})
		p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true, FailureDelay: -1}})
		c := dialRaw(t, "127.0.0.1", p.addr)
		c.reply()
		c.send("EHLO client.test\r\n")
		c.reply()
		c.send(plain("alice@a.test", "anything") + "\r\n")
		if got := c.reply(); !strings.HasPrefix(got, "454 4.7.0") {
			t.Errorf("login=xclient with a route nobody checked the password of: %q, want 454 4.7.0", got)
		}
		if got := fb.lines(); hasPrefix(got, "XCLIENT LOGIN=") {
			t.Errorf("backend got %q: an unchecked login named by XCLIENT", got)
		}
	})
	t.Run("backend without XCLIENT LOGIN", func(t *testing.T) {
		fb := startFake(t, postfixNoSASL(false))
		p := startProxy(t, &submission.Server{Server: gateway.Server{
			Router: nginxAuthService(t, "submission://"+fb.addr+"?login=xclient"), AllowPlaintextAuth: true, FailureDelay: -1}})
		c := dialRaw(t, "127.0.0.1", p.addr)
		c.reply()
		c.send("EHLO client.test\r\n")
		c.reply()
		c.send(plain("alice@a.test", "secret") + "\r\n")
		if got := c.reply(); !strings.HasPrefix(got, "454 4.7.0") {
			t.Errorf("a backend whose XCLIENT lacks LOGIN: %q, want 454 4.7.0", got)
		}
	})
}

// TestLoginXClientURL: login=xclient is a submission backend's, kept by
// String; other protocols and other values are refused with the reason.
func TestLoginXClientURL(t *testing.T) {
	b, err := route.ParseBackend("submission://127.0.0.1?login=xclient")
	if err != nil || !b.LoginXCLIENT {
		t.Fatalf("ParseBackend: %+v, %v", b, err)
	}
	if s := b.String(); s != "submission://127.0.0.1:587?login=xclient" {
		t.Errorf("String() = %q", s)
	}
	if b, err := route.ParseBackend("submission://127.0.0.1?login=auth"); err != nil || b.LoginXCLIENT {
		t.Errorf("login=auth: %+v, %v", b, err)
	}
	for url, want := range map[string]string{
		"imap://127.0.0.1?login=xclient":        "imap cannot log in that way",
		"submission://127.0.0.1?login=sasl":     `login="sasl": want auth or xclient`,
		"submissions://127.0.0.1?login=XCLIENT": `want auth or xclient`,
	} {
		if _, err := route.ParseBackend(url); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", url, err, want)
		}
	}
}
