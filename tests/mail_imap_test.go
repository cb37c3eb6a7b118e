package tests

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestMailIMAP runs `pipegate mail` with IMAP listeners (one offering
// STARTTLS, one implicit TLS; the first names its protocol, the second
// takes the default) in front of real Dovecot, and logs in through each
// with go-imap: the mail daemon serves IMAP as `pipegate imap` does.
func TestMailIMAP(t *testing.T) {
	testenv.LookPath(t, "dovecot", "dovecot-imapd")
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "imap.backend.test")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{Users: backend1Users, Messages: allMessages(backend1Users),
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key})
	dir := t.TempDir()
	writeFile(t, dir+"/routes.yaml", fmt.Sprintf(`routes:
  - account: alice@a.test                 # IMAP and POP3 on one host: the IMAP session takes imap://
    backends: [pop3://%s, imap://%s]
  - account: carol@a.test
    backend: imaps://%s?server_name=imap.backend.test
`, d.Addr, d.Addr, d.TLSAddr))
	pcert, pkey := ca.Issue(t, "127.0.0.1", "localhost")
	plain, implicit := testenv.FreeAddr(t), testenv.FreeAddr(t)
	startMail(t, dir, fmt.Sprintf(`listen:
  - addr: %s
    protocol: imap
  - addr: %s
    tls: true
tls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: routes.yaml
drain_timeout: 5s
`, plain, implicit, pcert, pkey, ca.CertFile(t)), []string{"alice-secret", "carol-secret"}, plain, implicit)

	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	for _, account := range []string{"alice@a.test", "carol@a.test"} {
		for _, mode := range []string{"starttls", "tls"} {
			var c *imapclient.Client
			var err error
			if mode == "tls" {
				c, err = imapclient.DialTLS(implicit, &imapclient.Options{TLSConfig: clientTLS})
			} else {
				c, err = imapclient.DialStartTLS(plain, &imapclient.Options{TLSConfig: clientTLS})
			}
			if err != nil {
				t.Fatalf("%s %s: dial: %v", account, mode, err)
			}
			if err := c.Login(account, backend1Users[account]).Wait(); err != nil {
				t.Fatalf("%s %s: login: %v", account, mode, err)
			}
			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil || int(sel.NumMessages) != messageCount[account] {
				t.Fatalf("%s %s: select: %v, %d messages, want %d", account, mode, err, sel.NumMessages, messageCount[account])
			}
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("%s %s: logout: %v", account, mode, err)
			}
			c.Close()
		}
	}
	// A wrong password is refused as through pipegate imap.
	c, err := imapclient.DialTLS(implicit, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@a.test", "wrong").Wait(); err == nil || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Fatalf("wrong password: %v", err)
	}
}
