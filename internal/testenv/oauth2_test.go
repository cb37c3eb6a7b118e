package testenv_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testenv"
)

// TestDovecotOAuth2 talks to a Dovecot whose oauth2 passdb asks an
// in-process introspection endpoint, directly (no proxy), in both
// introspection modes: a valid XOAUTH2 token logs in as its user, and the
// endpoint got the token as sent; an unknown token gets Dovecot's error
// challenge and, after the client's empty answer, NO; a password still
// logs in (OAuth2Options.Passwords).
func TestDovecotOAuth2(t *testing.T) {
	for _, mode := range []string{testenv.IntrospectPost, testenv.IntrospectGet, testenv.IntrospectAuth} {
		t.Run(mode, func(t *testing.T) {
			srv := testenv.StartOAuth2Server(t, mode)
			// '+', '/' and '=' must reach the endpoint unchanged (URL-escaped on the way).
			token := "tok+/=" + mode
			srv.AddToken(token, "alice@a.test")
			d := testenv.StartDovecotOAuth2(t, testenv.DovecotOptions{
				Users: map[string]string{"alice@a.test": "secret"},
			}, testenv.OAuth2Options{Server: srv, Passwords: true})
			c, r := dialDovecot(t, d.Addr)
			ir := base64.StdEncoding.EncodeToString([]byte("user=alice@a.test\x01auth=Bearer " + token + "\x01\x01"))
			fmt.Fprintf(c, "a AUTHENTICATE XOAUTH2 %s\r\n", ir)
			expect(t, r, "a OK")
			d.WaitLog(t, `imap-login: Info: Login: user=<alice@a.test>, method=XOAUTH2`)
			if got := srv.Tokens(); !slices.Equal(got, []string{token}) {
				t.Errorf("the endpoint was asked about %q, want [%q]", got, token)
			}

			c, r = dialDovecot(t, d.Addr)
			fmt.Fprintf(c, "c LOGIN alice@a.test secret\r\n")
			expect(t, r, "c OK")

			// Last: Dovecot's auth penalty delays this address's next login.
			c, r = dialDovecot(t, d.Addr)
			ir = base64.StdEncoding.EncodeToString([]byte("user=alice@a.test\x01auth=Bearer expired\x01\x01"))
			fmt.Fprintf(c, "b AUTHENTICATE XOAUTH2 %s\r\n", ir)
			l := expect(t, r, "+ ")
			ch, err := base64.StdEncoding.DecodeString(strings.TrimSpace(l[2:]))
			if err != nil || !strings.Contains(string(ch), `"status":"401"`) {
				t.Errorf("challenge for an unknown token: %q (%v), want Dovecot's JSON with status 401", l, err)
			}
			fmt.Fprintf(c, "\r\n")
			expect(t, r, "b NO [AUTHENTICATIONFAILED]")
			d.WaitLog(t, `oauth2 failed: Introspection failed: Provided token is not valid`)
		})
	}
}

func dialDovecot(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	expect(t, r, "* OK")
	return c, r
}
