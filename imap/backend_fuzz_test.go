package imap_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/internal/gatewaytest"
)

// FuzzBackendLogin fuzzes what a backend sends during the proxy's login
// dialogue (gatewaytest.BackendFuzz: the input is the backend's turns;
// a plain route and a STARTTLS one the fake cannot serve). The client
// logs in by LOGIN and half-closes; the answer is a tagged response
// as checkBackendLogin says, in IMAP's grammar (checkIMAPSession).
func FuzzBackendLogin(f *testing.F) {
	caps := "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN"
	in := gatewaytest.BackendInput
	for _, s := range [][]byte{
		// Dovecot: ID and LOGIN pipelined, capabilities in the OK.
		in("* OK [CAPABILITY "+caps+"] Dovecot ready.\r\n", "* ID NIL\r\npg1 OK ID completed.\r\n",
			"pg2 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n* 1 EXISTS\r\n"),
		// No capabilities in the greeting nor the OK: CAPABILITY twice.
		in("* OK ready\r\n", "* CAPABILITY IMAP4rev1\r\npg1 OK done\r\n", "pg2 OK Logged in\r\n",
			"* OK [ALERT] hi\r\n* CAPABILITY IMAP4rev1 IDLE\r\npg3 OK\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "pg1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "pg1 NO [INUSE] busy\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "pg1 NO [UNAVAILABLE] later\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "pg1 BAD \x00what\r\n"),
		// Malformed answers to the login: a broken backend, not a
		// refused password (found by this target).
		in("* OK\n", "pg1 OK\n", "pg2\n"),
		in("* OK [CAPABILITY ID]\n", "pg1 \npg2 OK0\n"),
		// LOGINDISABLED without SASL-IR: AUTHENTICATE PLAIN, its "+".
		in("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n", "+ \r\n", "+ more\r\n", "pg1 OK [CAPABILITY IMAP4rev1] in\r\n"),
		in("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n", "pg1 OK too early\r\n"),
		in("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] hi\r\n"),
		// STARTTLS (the starttls route): refused, followed by plaintext,
		// without TLS.
		in("* OK [CAPABILITY "+caps+" STARTTLS] hi\r\n", "pg1 NO not today\r\n"),
		in("* OK [CAPABILITY "+caps+" STARTTLS] hi\r\n", "pg1 OK Begin TLS\r\n* CAPABILITY IMAP4rev1\r\npg2 OK done\r\n"),
		in("* OK [CAPABILITY "+caps+" STARTTLS] hi\r\n", "pg1 OK Begin TLS\r\n", "\x15\x03\x03\x00\x02\x02\x28pg2 OK\r\n"),
		// Broken backends.
		in(""),
		in("* OK " + strings.Repeat("x", 100000)),
		in("* BYE not today\r\n"),
		in("* PREAUTH no login needed\r\n", "pg1 OK\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "pg9 OK Logged in\r\nxx OK\r\n* OK pg1\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "+ go on\r\n", "pg1 OK\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "* CAPABILITY {999999999}\r\n"),
		in("* OK {999999999}\r\n"),
		in("* OK hi\r\n", "* CAPABILITY IMAP4rev1 {5}\r\nab\r\n\r\npg1 OK\r\n", "pg2 OK\r\n"),
		in("\x00\r\n\r\r\n\r\n* OK hi\r\n", "\r\r\r\npg1 OK\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "pg1 OK Log"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", "pg1 OK Logged in\r\n", "* BYE gone\r\n"),
		in("* OK [CAPABILITY IMAP4rev1] hi\r\n", strings.Repeat("* OK still thinking\r\n", 200)),
	} {
		f.Add(s)
	}

	bf := gatewaytest.NewBackendFuzz(f, "imap")
	p := startProxy(f, &imap.Server{Server: bf.Server(f, imap.NewMetrics(bf.Reg))})
	f.Fuzz(func(t *testing.T, in []byte) {
		bf.Run(t, in, func() (net.Conn, io.Reader) {
			c := dialRaw(t, p.addr)
			return c.conn, io.MultiReader(bytes.NewReader(c.r.buf), c.conn)
		}, func(user string) string { return "a LOGIN " + user + " apass\r\n" }, checkBackendLogin)
	})
}

// checkBackendLogin checks the proxy's answer to the client's LOGIN, the
// first line of out (gatewaytest.CheckAnswer): OK only when the backend
// sent an OK to the proxy's login command (its tag, pgN, is predictable:
// a backend may send it early); NO [UNAVAILABLE] the proxy's own; another
// NO only when the backend refused the login with NO (its text and code
// are relayed; a BAD or a malformed answer is the proxy's NO
// [UNAVAILABLE]); through the starttls route, the backend never saw
// the credentials. Up to a refusal, out is in IMAP's grammar.
func checkBackendLogin(out []byte, loggedIn bool, r gatewaytest.FuzzRoute, d *gatewaytest.Dialogue) error {
	b64 := base64.StdEncoding.EncodeToString
	if err := d.Leaked("apass", b64([]byte("\x00"+r.User+"\x00apass"))); r.StartTLS && err != nil {
		return err
	}
	login := d.Got(func(l string) bool {
		_, cmd, _ := strings.Cut(l, " ")
		return gatewaytest.HasPrefixFold(cmd, "LOGIN ") || gatewaytest.HasPrefixFold(cmd, "AUTHENTICATE ")
	})
	tag, _, _ := strings.Cut(login, " ")
	said := func(want string) bool {
		return login != "" && d.Sent(func(l string) bool {
			t, resp, _ := strings.Cut(l, " ")
			typ, _, _ := strings.Cut(resp, " ")
			return t == tag && strings.EqualFold(typ, want)
		}) > 0
	}
	line, _, _ := bytes.Cut(out, []byte("\r\n"))
	answer, kind := string(line), gatewaytest.AnswerOther
	switch {
	case strings.HasPrefix(answer, "a OK "):
		kind = gatewaytest.AnswerOK
	case answer == "a NO [UNAVAILABLE] "+gateway.TextUnavailable:
		kind = gatewaytest.AnswerUnavailable
	case strings.HasPrefix(answer, "a NO "):
		kind = gatewaytest.AnswerRefused
	}
	if err := gatewaytest.CheckAnswer(answer, kind, loggedIn, r.StartTLS, said("OK"), said("NO")); err != nil || kind == gatewaytest.AnswerOK {
		return err // after an OK, the backend's
	}
	return checkIMAPSession(out, 1, false)
}
