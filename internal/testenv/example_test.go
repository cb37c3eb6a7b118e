package testenv_test

import (
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
)

// A test starts a Dovecot with one user that trusts 127.0.0.1 to send
// client addresses, and later checks what Dovecot logged.
func ExampleStartDovecot() {
	var t *testing.T // the test's
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret"},
		Messages:        map[string][]string{"alice@a.test": {"Subject: hi\r\n\r\nhello\r\n"}},
		TrustedNetworks: []string{"127.0.0.1/32"},
	})
	_ = d.Addr    // plain IMAP with STARTTLS
	_ = d.TLSAddr // imaps
	d.WaitLog(t, `Login: user=<alice@a.test>.*rip=127\.0\.0\.2`)
}
