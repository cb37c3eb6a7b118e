package sieve_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/sieve"
)

// FuzzBackendLogin fuzzes what a backend sends during the proxy's login
// dialogue (gatewaytest.BackendFuzz: the input is the backend's turns;
// a plain route and a STARTTLS one the fake cannot serve). The client
// logs in by AUTHENTICATE PLAIN and half-closes; the answer is a response
// as checkBackendLogin says, in ManageSieve's grammar (checkSieveSession).
func FuzzBackendLogin(f *testing.F) {
	caps := "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto reject\"\r\n\"NOTIFY\" \"mailto\"\r\n" +
		"\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n\"XCLIENT\"\r\n\"VERSION\" \"1.0\"\r\n"
	in := gatewaytest.BackendInput
	for _, s := range [][]byte{
		// Dovecot: XCLIENT, then AUTHENTICATE.
		in(caps+"OK \"Dovecot ready.\"\r\n", "OK\r\n", "OK \"Logged in.\"\r\nbytes after\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n", "OK (SASL \"=\") \"Logged in.\"\r\n"),
		in(caps+"OK \"ready\"\r\n", "NO \"not trusted\"\r\n", "NO \"Authentication failed.\"\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n", "NO (TRYLATER) \"later\"\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n", "NO {5}\r\nab\r\nc\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n", "\"\"\r\n", "{4}\r\nmore\r\n", "OK\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n", "BYE \"gone\"\r\n"),
		in("\"SASL\" \"LOGIN\"\r\nOK\r\n"),
		// STARTTLS (the starttls route): refused, followed by plaintext,
		// without TLS.
		in(caps+"OK \"ready\"\r\n", "NO \"not today\"\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n"+caps+"OK\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n", "\x15\x03\x03\x00\x02\x02\x28OK\r\n"),
		// Broken backends.
		in(""),
		in("\"SASL\" \"" + strings.Repeat("x", 100000)),
		in("BYE \"not today\"\r\n"),
		in("NO \"not today\"\r\n"),
		in(strings.Repeat("\"X\"\r\n", 2000) + "OK\r\n"),
		in("\"SASL\" {999999999}\r\n"),
		in("\"SASL\" {5+}\r\nPLAIN\r\nOK\r\n", "OK\r\n"),
		in("\x00\r\n\r\r\n\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n", "\r\r\r\nOK\r\n"),
		in(caps+"OK \"ready\"\r\n", "OK\r\n", "OK \"Log"),
		in(caps+"OK \"ready\"\r\n", "OK\r\nOK\r\n"),
		in("\"sasl\" \"plain\"\r\nok\r\n", "ok\r\n"),
	} {
		f.Add(s)
	}

	bf := gatewaytest.NewBackendFuzz(f, "sieve")
	addr := startProxy(f, &sieve.Server{Server: bf.Server(f, sieve.NewMetrics(bf.Reg))})
	f.Fuzz(func(t *testing.T, in []byte) {
		bf.Run(t, in, func() (net.Conn, io.Reader) {
			c, _ := dial(t, "", addr)
			return c.c, c.r
		}, func(user string) string {
			return "AUTHENTICATE \"PLAIN\" \"" + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00apass")) + "\"\r\n"
		}, checkBackendLogin)
	})
}

// checkBackendLogin checks the proxy's answer to the client's
// AUTHENTICATE (gatewaytest.CheckAnswer): OK only when the backend sent
// an OK besides its greeting's; NO (TRYLATER) the proxy's own; another
// NO only when the backend sent one (its text and code are relayed);
// through the starttls route, the backend never saw the credentials. Up
// to a refusal, out is in ManageSieve's grammar.
func checkBackendLogin(out []byte, loggedIn bool, r gatewaytest.FuzzRoute, d *gatewaytest.Dialogue) error {
	if err := d.Leaked("apass", base64.StdEncoding.EncodeToString([]byte("\x00"+r.User+"\x00apass"))); r.StartTLS && err != nil {
		return err
	}
	said := func(typ string) int {
		return d.Sent(func(l string) bool { return gatewaytest.HasPrefixFold(l, typ) })
	}
	s := &sieveScanner{b: out}
	typ, text, err := s.response()
	answer, kind := string(out[:s.i]), gatewaytest.AnswerOther
	switch {
	case err != nil:
	case typ == "OK":
		kind = gatewaytest.AnswerOK
	case bytes.HasPrefix(out, []byte("NO (TRYLATER) ")) && text == gateway.TextUnavailable:
		kind = gatewaytest.AnswerUnavailable
	case typ == "NO":
		kind = gatewaytest.AnswerRefused
	}
	if err := gatewaytest.CheckAnswer(answer, kind, loggedIn, r.StartTLS, said("OK") >= 2, said("NO") >= 1); err != nil || kind == gatewaytest.AnswerOK {
		return err // after OK, the backend's
	}
	return checkSieveSession(out, 1, false)
}
