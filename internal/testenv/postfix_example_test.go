package testenv_test

import (
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
)

// A test starts a Postfix that trusts 127.0.0.1 to send XCLIENT, takes
// AUTH PLAIN for one user (Cyrus SASL) and relays what logged-in clients
// send to an in-process SMTP sink, then checks Postfix's log and the
// relayed message.
func ExampleStartPostfix() {
	var t *testing.T // the test's
	p := testenv.StartPostfix(t, testenv.PostfixOptions{
		SASL:             true,
		Users:            map[string]string{"alice@a.test": "secret"},
		MessageSizeLimit: 1 << 20, // EHLO lists SIZE 1048576
	})
	_ = p.Addr // plain, with STARTTLS when PostfixOptions.CertFile is set
	// ... a client sends XCLIENT ADDR=127.0.0.2, logs in and sends a message ...
	p.WaitLog(t, `client=unknown\[127\.0\.0\.2\], sasl_method=PLAIN, sasl_username=alice@a\.test`)
	m := p.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool { return m.From == "alice@a.test" })
	_ = m.Data // starts with Postfix's Received: line, naming the client and the user
}
