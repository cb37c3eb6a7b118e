package testenv_test

import (
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// A test starts a Cyrus IMAP with one user of a virtual domain, a message
// in her INBOX and TLS, and later checks what Cyrus logged.
func ExampleStartCyrus() {
	var t *testing.T // the test's
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	c := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users:    map[string]string{"alice@a.test": "secret"},
		Messages: map[string][]string{"alice@a.test": {"Subject: hi\r\n\r\nhello\r\n"}},
		CertFile: cert, KeyFile: key, // STARTTLS/STLS offered, imaps and pop3s listen
	})
	_ = c.IMAPAddr  // imapd; c.IMAPSAddr is imaps
	_ = c.POP3Addr  // pop3d; c.POP3SAddr is pop3s
	_ = c.SieveAddr // timsieved
	// ... a client logs in through the proxy ...
	c.WaitLog(t, `imap\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test plaintext User logged in`)
	if err := c.Deliver("alice@a.test", "Subject: more\r\n\r\nby LMTP\r\n"); err != nil {
		t.Fatal(err)
	}
}
