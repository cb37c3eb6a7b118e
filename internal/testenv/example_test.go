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

// A test starts a Dovecot that also serves POP3, ManageSieve and
// submission, trusting 127.0.0.1 to send XCLIENT; submission relays to an
// in-process SMTP sink where the test finds the message.
func ExampleStartDovecot_mailProtocols() {
	var t *testing.T // the test's
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret"},
		TrustedNetworks: []string{"127.0.0.1/32"},
		Protocols:       []string{testenv.IMAP, testenv.POP3, testenv.Sieve, testenv.Submission},
	})
	_ = d.POP3Addr          // POP3 with STLS; d.POP3TLSAddr is pop3s
	_ = d.SieveAddr         // ManageSieve with STARTTLS
	_ = d.SubmissionAddr    // submission with STARTTLS
	_ = d.SubmissionTLSAddr // submissions (implicit TLS)
	// ... a client sends XCLIENT ADDR=10.1.2.3, logs in and sends a message ...
	d.WaitLog(t, `pop3-login: Info: Login: user=<alice@a.test>, .*rip=10\.1\.2\.3`)
	m := d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool { return m.From == "alice@a.test" })
	_ = m.Data // starts with Dovecot's Received: line
}
