package imap_test

import (
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/testenv"
)

// TestDovecotCapabilities: a real Dovecot's post-login capabilities reach
// the client whole in its OK. With the quota and compression plugins and
// METADATA, as many installations have them, the list passes 400 bytes,
// which a cut to a response text's length (SafeText) ended in the middle
// of a capability.
func TestDovecotCapabilities(t *testing.T) {
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users: map[string]string{"alice@a.test": "secret"},
		Extra: "mail_plugins = $mail_plugins quota zlib\n" +
			"protocol imap {\n  mail_plugins = $mail_plugins imap_quota imap_zlib\n}\n" +
			"imap_metadata = yes\nmail_attribute_dict = file:%h/dovecot-attributes\n",
	})
	p := startProxy(t, &imap.Server{Server: gateway.Server{
		Router: oneBackend(t, "imap://"+d.Addr+"?id=0"), AllowPlaintextAuth: true,
	}})
	// What Dovecot itself says after the login.
	direct := dialRaw(t, d.Addr)
	direct.send("a LOGIN alice@a.test secret\r\n")
	want := direct.expectPrefix("a ")
	if !strings.HasPrefix(want, "a OK [CAPABILITY ") || len(want) < 400 {
		t.Fatalf("Dovecot's own answer: %q, want an OK with over 400 bytes of capabilities", want)
	}
	c := dialRaw(t, p.addr)
	c.send("a LOGIN alice@a.test secret\r\n")
	if got := c.expectPrefix("a "); got != want {
		t.Errorf("through the proxy:\n%q, want Dovecot's\n%q", got, want)
	}
	c.send("b GETQUOTAROOT INBOX\r\n")
	if l := c.expectPrefix("b "); !strings.HasPrefix(l, "b OK") {
		t.Errorf("GETQUOTAROOT: %q", l)
	}
}
