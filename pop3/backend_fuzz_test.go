package pop3_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/pop3"
)

// FuzzBackendLogin fuzzes what a backend sends during the proxy's login
// dialogue (gatewaytest.BackendFuzz: the input is the backend's turns;
// a plain route and a STARTTLS one the fake cannot serve). The client
// logs in by USER and PASS and half-closes; the answer is a response to PASS
// as checkBackendLogin says, in POP3's grammar (checkPOP3Session).
func FuzzBackendLogin(f *testing.F) {
	capa := "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN\r\nXCLIENT\r\nSTLS\r\n.\r\n"
	in := gatewaytest.BackendInput
	for _, s := range [][]byte{
		// Dovecot: CAPA, XCLIENT, AUTH PLAIN.
		in("+OK [XCLIENT] Dovecot ready.\r\n", capa, "+OK\r\n", "+OK Logged in.\r\nbytes after\r\n"),
		// USER and PASS, pipelined or not.
		in("+OK hi\r\n", "+OK\r\nUSER\r\nPIPELINING\r\n.\r\n", "+OK\r\n", "+OK\r\n", "+OK in\r\n"),
		in("+OK hi\r\n", "-ERR no CAPA\r\n", "+OK\r\n", "+OK in\r\n"),
		in("+OK hi\r\n", capa, "+OK\r\n", "-ERR [AUTH] Authentication failed.\r\n"),
		in("+OK hi\r\n", capa, "+OK\r\n", "-ERR [IN-USE] busy\r\n"),
		in("+OK hi\r\n", capa, "+OK\r\n", "-ERR [SYS/TEMP] later\r\n"),
		in("+OK hi\r\n", "-ERR\r\n", "-ERR [AUTH] no such user\r\n"),
		in("+OK hi\r\n", "+OK\r\nSASL PLAIN\r\n.\r\n", "+ \r\n", "+ more\r\n", "+OK\r\n"),
		in("+OK hi\r\n", "+OK\r\nSTLS\r\n.\r\n"),
		// STARTTLS (the starttls route): refused, followed by plaintext,
		// without TLS.
		in("+OK hi\r\n", "-ERR not today\r\n"),
		in("+OK hi\r\n", "+OK Begin TLS\r\n+OK\r\n.\r\n"),
		in("+OK hi\r\n", "+OK Begin TLS\r\n", "\x15\x03\x03\x00\x02\x02\x28+OK\r\n"),
		// Broken backends.
		in(""),
		in("+OK " + strings.Repeat("x", 100000)),
		in("-ERR not today\r\n"),
		in("+OK hi\r\n", "+OK\r\n"+strings.Repeat("X\r\n", 200)+".\r\n"),
		in("+OK hi\r\n", "+OK\r\nUSER\r\n", "+OK\r\n"),
		in("+OK hi\r\n", "+ go on\r\n", "+ \r\n", "+OK\r\n"),
		in("+OK {999999999}\r\n", "+OK\r\n{999999999}\r\n.\r\n"),
		in("\x00\r\n\r\r\n\r\n+OK hi\r\n", "\r\r\r\n+OK\r\n.\r\n", "+OK\r\n", "+OK\r\n"),
		in("+OK hi\r\n", "-ERR\r\n", "+OK\r\n", "+OK Log"),
		in("+OK hi\r\n", "-ERR\r\n", "+OK\r\n+OK\r\n"),
		in("+ok hi\r\n", "+ok\r\n.\r\n", "+ok\r\n", "+ok\r\n"),
	} {
		f.Add(s)
	}

	bf := gatewaytest.NewBackendFuzz(f, "pop3")
	p := startProxy(f, &pop3.Server{Server: bf.Server(f, pop3.NewMetrics(bf.Reg))})
	f.Fuzz(func(t *testing.T, in []byte) {
		bf.Run(t, in, func() (net.Conn, io.Reader) {
			c := dial(t, "", p.addr)
			return c.conn, c.br
		}, func(user string) string { return "USER " + user + "\r\nPASS apass\r\n" }, checkBackendLogin)
	})
}

// checkBackendLogin checks the proxy's answers to the client's USER
// (its own +OK) and PASS (gatewaytest.CheckAnswer): +OK only when the
// backend sent a +OK besides its greeting's; -ERR [SYS/TEMP] the
// proxy's own; another -ERR only when the backend sent one (its text
// and code are relayed); through the starttls route, the backend never
// saw the credentials. Up to a refusal, out is in POP3's grammar.
func checkBackendLogin(out []byte, loggedIn bool, r gatewaytest.FuzzRoute, d *gatewaytest.Dialogue) error {
	if err := d.Leaked("apass", base64.StdEncoding.EncodeToString([]byte("\x00"+r.User+"\x00apass"))); r.StartTLS && err != nil {
		return err
	}
	said := func(status string) int {
		return d.Sent(func(l string) bool { return gatewaytest.HasPrefixFold(l, status) })
	}
	lines := bytes.SplitN(out, []byte("\r\n"), 3)
	if len(lines) < 3 || string(lines[0]) != "+OK Send the password" {
		return fmt.Errorf("no +OK to USER, or no answer to PASS")
	}
	answer, kind := string(lines[1]), gatewaytest.AnswerOther
	switch {
	case strings.HasPrefix(answer, "+OK"):
		kind = gatewaytest.AnswerOK
	case answer == "-ERR [SYS/TEMP] "+gateway.TextUnavailable:
		kind = gatewaytest.AnswerUnavailable
	case strings.HasPrefix(answer, "-ERR"):
		kind = gatewaytest.AnswerRefused
	}
	if err := gatewaytest.CheckAnswer(answer, kind, loggedIn, r.StartTLS, said("+OK") >= 2, said("-ERR") >= 1); err != nil || kind == gatewaytest.AnswerOK {
		return err // after +OK, the backend's
	}
	return checkPOP3Session(out, 2, false)
}
