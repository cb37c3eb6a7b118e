package imap_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
)

// TestBackendTakesNoPasswordHere: a backend that advertises LOGINDISABLED
// without AUTH=PLAIN on a plain connection (Cyrus with its default
// allowplaintext: no, Dovecot with disable_plaintext_auth) takes no
// password there. The route is wrong (imap:// where imap+starttls:// was
// needed), not the client's password: the login is unavailable (no
// failure counted against the client, the next backend tried), and the
// password is not sent in clear to a server that said it would refuse
// it. Before, it went in an AUTHENTICATE PLAIN, and the backend's "NO
// encryption needed" reached the client as a wrong password.
func TestBackendTakesNoPasswordHere(t *testing.T) {
	got := make(chan string, 100)
	refusing := startFake(t, func(fc *fakeConn) {
		// Cyrus 3.6's greeting with allowplaintext: no, on a plain link.
		fc.send("* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE STARTTLS LOGINDISABLED SASL-IR] cyrus.test Cyrus IMAP server ready\r\n")
		for {
			c := fc.cmd()
			if c == nil {
				return
			}
			line := c.Name
			for _, a := range c.Args {
				line += " " + a.Str
			}
			got <- line
			switch c.Name {
			case "ID":
				fc.send("* ID NIL\r\n" + c.Tag + " OK Completed\r\n")
			case "LOGIN":
				fc.send(c.Tag + " NO Login only available under a layer\r\n")
			case "AUTHENTICATE":
				fc.send(c.Tag + " NO encryption needed to use mechanism\r\n")
			default:
				fc.send(c.Tag + " BAD unexpected\r\n")
			}
		}
	})
	taking := startFake(t, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] fake\r\n")
		fc.answerIDThenLogin(nil, " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
	})

	t.Run("alone", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		p := startProxy(t, &imap.Server{Server: gateway.Server{
			Router:             oneBackend(t, "imap://"+refusing.addr),
			AllowPlaintextAuth: true,
			Metrics:            imap.NewMetrics(reg),
		}})
		c := dialRaw(t, p.addr)
		c.send("a LOGIN alice@a.test secret\r\n")
		if l := c.expectPrefix("a "); l != "a NO [UNAVAILABLE] "+gateway.TextUnavailable {
			t.Errorf("login: %q", l)
		}
		m := gather(t, reg)
		if m["pipegate_imap_logins_total{unavailable}"] != 1 || m["pipegate_imap_logins_total{failed}"] != 0 {
			t.Errorf("logins counted: %v", m)
		}
		c.conn.Close()
		for l := range drain(got) {
			if strings.Contains(l, "secret") || strings.HasPrefix(l, "AUTHENTICATE") || strings.HasPrefix(l, "LOGIN") {
				t.Errorf("the backend got %q", l)
			}
		}
	})

	t.Run("then a backend that takes it", func(t *testing.T) {
		p := startProxy(t, &imap.Server{Server: gateway.Server{
			Router:             routes(t, map[string][]string{"@a.test": {"imap://" + refusing.addr, "imap://" + taking.addr}}),
			AllowPlaintextAuth: true,
		}})
		c := dialRaw(t, p.addr)
		c.send("a LOGIN alice@a.test secret\r\n")
		if l := c.expectPrefix("a "); l != "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in" {
			t.Errorf("login: %q", l)
		}
	})
}
