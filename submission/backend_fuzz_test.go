package submission_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/submission"
)

// FuzzBackendLogin fuzzes what a backend sends during the proxy's login
// dialogue (gatewaytest.BackendFuzz: the input is the backend's turns;
// a plain route and a STARTTLS one the fake cannot serve). The client
// logs in by EHLO and AUTH PLAIN and half-closes; the answer is a reply to AUTH
// as checkBackendLogin says, in SMTP's grammar (checkSMTPSession).
func FuzzBackendLogin(f *testing.F) {
	ehlo := "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n" +
		"250-XCLIENT ADDR PORT PROTO HELO LOGIN TTL SESSION DESTADDR DESTPORT\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
	in := gatewaytest.BackendInput
	for _, s := range [][]byte{
		// Postfix or Dovecot: EHLO, XCLIENT, EHLO again, AUTH.
		in("220 mx.test ESMTP\r\n", ehlo, "220 mx.test ESMTP\r\n", ehlo, "235 2.7.0 Authentication successful\r\nbytes after\r\n"),
		in("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 AUTH PLAIN\r\n", "235 2.7.0 Logged in\r\n"),
		in("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n", "235 ok\r\n"),
		in("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 AUTH PLAIN\r\n", "535 5.7.8 Authentication credentials invalid\r\n"),
		in("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 AUTH PLAIN\r\n", "454 4.7.0 later\r\n"),
		in("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 AUTH PLAIN\r\n", "334 \r\n", "334 more\r\n", "235 ok\r\n"),
		in("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 AUTH PLAIN\r\n", "250 what\r\n"),
		in("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 AUTH PLAIN\r\n", "235-multi\r\n235 line\r\n"),
		in("220 mx.test ESMTP\r\n", ehlo, "550 5.7.1 not trusted\r\n", "235 ok\r\n"),
		in("220 mx.test ESMTP\r\n", "250 mx.test\r\n"),
		// STARTTLS (the starttls route): refused, followed by plaintext,
		// without TLS.
		in("220 mx.test ESMTP\r\n", ehlo, "454 4.7.0 not today\r\n"),
		in("220 mx.test ESMTP\r\n", ehlo, "220 go ahead\r\n"+ehlo),
		in("220 mx.test ESMTP\r\n", ehlo, "220 go ahead\r\n", "\x15\x03\x03\x00\x02\x02\x28235 ok\r\n"),
		// Broken backends.
		in(""),
		in("220 " + strings.Repeat("x", 100000)),
		in("554 5.3.2 not today\r\n"),
		in("421 4.3.2 bye\r\n"),
		in("220-mx.test\r\n" + strings.Repeat("220-x\r\n", 200) + "220 ok\r\n"),
		in("220 mx.test\r\n", "250-mx.test\r\n250-{999999999}\r\n250 AUTH PLAIN\r\n", "235 ok\r\n"),
		in("\x00\r\n\r\r\n\r\n220 mx.test\r\n", "\r\r\r\n250 AUTH PLAIN\r\n", "235 ok\r\n"),
		in("220 mx.test\r\n", "250-mx.test\r\n250 AUTH PLAIN\r\n", "235 Log"),
		in("220 mx.test\r\n", "250-mx.test\r\n251 AUTH PLAIN\r\n", "235 ok\r\n"),
		in("220 mx.test\r\n", "250 AUTH PLAIN\r\n235 ok\r\n"),
		in("2200 mx.test\r\n", "250 AUTH PLAIN\r\n", "2350 ok\r\n"),
	} {
		f.Add(s)
	}

	bf := gatewaytest.NewBackendFuzz(f, "submission")
	p := startProxy(f, &submission.Server{Server: bf.Server(f, submission.NewMetrics(bf.Reg))})
	f.Fuzz(func(t *testing.T, in []byte) {
		bf.Run(t, in, func() (net.Conn, io.Reader) {
			conn, err := net.Dial("tcp", p.addr) // not dialRaw: binding first runs out of ports
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
			c.reply() // the greeting
			return c.conn, c.r
		}, smtpLogin, checkBackendLogin)
	})
}

// smtpLogin is what the client of FuzzBackendLogin sends.
func smtpLogin(user string) string {
	return "EHLO c.test\r\nAUTH PLAIN " + plain("", user, "apass") + "\r\n"
}

// checkBackendLogin checks the proxy's replies to the client's EHLO (its
// own 250) and AUTH (gatewaytest.CheckAnswer): 235 only when the backend
// sent a 235; 454 the proxy's own; 535 (the proxy's text) only when the
// backend sent a 535; through the starttls route, the backend never saw
// the credentials. Up to a refusal, out is in SMTP's grammar.
func checkBackendLogin(out []byte, loggedIn bool, r gatewaytest.FuzzRoute, d *gatewaytest.Dialogue) error {
	if err := d.Leaked("apass", plain("", r.User, "apass")); r.StartTLS && err != nil {
		return err
	}
	said := func(code string) bool {
		return d.Sent(func(l string) bool { return strings.HasPrefix(l, code) }) > 0
	}
	kind := gatewaytest.AnswerOther
	code, text, rest, err := smtpReply(out)
	if err == nil && code == 250 {
		code, text, _, err = smtpReply(rest)
	}
	switch {
	case err != nil:
	case code == 235:
		kind = gatewaytest.AnswerOK
	case code == 454 && text == "4.7.0 Temporary authentication failure":
		kind = gatewaytest.AnswerUnavailable
	case code == 535 && text == "5.7.8 Authentication credentials invalid":
		kind = gatewaytest.AnswerRefused
	}
	if err := gatewaytest.CheckAnswer(text, kind, loggedIn, r.StartTLS, said("235"), said("535")); err != nil || kind == gatewaytest.AnswerOK {
		return err // after 235, the backend's
	}
	return checkSMTPSession(out, []byte(smtpLogin(r.User)), false)
}
