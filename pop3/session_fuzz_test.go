package pop3_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/demo"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/pop3"
	"github.com/pipegate/pipegate/pop3/wire"
)

// FuzzClientSession drives whole pre-login sessions: each input is what
// a client sends after the greeting, then it half-closes. The proxy (with
// STLS, plaintext logins, OAuth and a trusted loopback, in front of the
// demo's POP3 backend holding alice@a.test) must not panic nor log one,
// must answer in POP3's grammar (checkPOP3Session) up to a login's +OK,
// and must close the connection after the client's EOF.
func FuzzClientSession(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plain := b64("\x00alice@a.test\x00alice-pw")
	xoauth := b64("user=alice@a.test\x01auth=Bearer token\x01\x01")
	for _, s := range []string{
		"CAPA\r\nAUTH\r\nNOOP\r\nQUIT\r\nCAPA\r\n",
		"STLS\r\nCAPA\r\n",
		"STLS\r\n\x16\x03\x01\x00\x05hello",
		"STLS x\r\nCAPA x\r\n",
		"USER alice@a.test\r\nPASS alice-pw\r\nSTAT\r\nLIST\r\nRETR 1\r\nQUIT\r\n",
		"USER alice@a.test\r\nPASS wrong\r\nPASS alice-pw\r\nUSER bob@b.test\r\nPASS x\r\nUSER carol@a.test\r\nPASS x y\r\nNOOP\r\n",
		"USER\r\nPASS\r\nUSER alice@a.test\r\nCAPA\r\nPASS alice-pw\r\n",
		"AUTH PLAIN " + plain + "\r\nUIDL\r\n",
		"AUTH PLAIN\r\n" + plain + "\r\nTOP 1 0\r\n",
		"AUTH PLAIN\r\n*\r\nAUTH PLAIN =\r\nAUTH PLAIN !!\r\nAUTH PLAIN a b c\r\n",
		"AUTH LOGIN\r\n" + b64("alice@a.test") + "\r\n" + b64("alice-pw") + "\r\n",
		"AUTH XOAUTH2 " + xoauth + "\r\n",
		"AUTH XOAUTH2\r\n" + xoauth + "\r\n\r\n",
		"AUTH OAUTHBEARER\r\nbjphPWFsaWNlQGEudGVzdCwBYXV0aD1CZWFyZXIgdAEB\r\n",
		"AUTH FOO\r\nAPOP alice@a.test 0123456789abcdef\r\nSTAT\r\nXYZZY\r\n",
		"XCLIENT ADDR=192.0.2.1 PORT=1234 TTL=2\r\nXCLIENT FOO\r\nCAPA\r\n",
		"USER " + strings.Repeat("x", pop3.DefaultMaxLineLength) + "\r\nCAPA\r\n",
		"AUTH PLAIN\r\n" + strings.Repeat("A", pop3.DefaultMaxAuthLineLength+10) + "\r\n",
		strings.Repeat("y", 2*pop3.DefaultMaxLineLength),
		"CA\x00PA\r\nCAPA\rNOOP\r\n\r\n\nNOOP\n.\r\n+OK\r\n",
		"USER al\x00ice\r\nUSER alice@a.test\r\nPASS alice\x00pw\r\n",
		strings.Repeat("NOOP\r\n", 32),
		"USER alice@a.test\r\nPASS alice-pw",
	} {
		f.Add([]byte(s))
	}

	d, err := demo.Start(demo.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Shutdown(context.Background()) })
	reg := prometheus.NewRegistry()
	logs := &gatewaytest.PanicLog{}
	p := startProxy(f, &pop3.Server{
		Server:          gatewaytest.FuzzServer(routes(f, map[string][]string{"@a.test": {"pop3://" + d.Backends[0].POP3 + "?client_addr=none"}}), newPKI(f).server, pop3.NewMetrics(reg), logs),
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})

	f.Fuzz(func(t *testing.T, in []byte) {
		c := dial(t, "", p.addr)
		gatewaytest.FuzzSession(t, reg, "pipegate_pop3_logins_total", logs, c.conn, c.br, in,
			func(out []byte, loggedIn bool) error {
				return checkPOP3Session(out, bytes.Count(in, []byte("\n")), loggedIn)
			})
	})
}

// pop3OwnOK are the texts of the proxy's own single-line +OKs before
// login; any other +OK is a login's, relayed from the backend.
var pop3OwnOK = map[string]bool{"Send the password": true, "Logging out": true, "Updated": true}

// pop3MultiLine are the texts of the +OKs a multi-line body follows:
// CAPA's and AUTH's without arguments.
var pop3MultiLine = map[string]bool{"Capability list follows": true, "Supported mechanisms follow": true}

// checkPOP3Session checks what the proxy sent after its greeting to a
// client that sent lines lines: CRLF-terminated responses of at most
// 512 octets (RFC 1939 section 3, RFC 2449 section 4): "+OK" and
// "-ERR" with an optional response code, "+ " continuations, and the
// bodies of CAPA and AUTH, up to a login's +OK (when loggedIn: the
// backend speaks after it) or STLS's (TLS records after it); nothing
// after QUIT's +OK; at most one -ERR per client line, plus one for a
// last line without LF; no -ERR for a login timeout, which means that the
// client's EOF went unnoticed.
func checkPOP3Session(out []byte, lines int, loggedIn bool) error {
	refusals, quit := 0, false
	for len(out) > 0 {
		line, rest, err := pop3Line(out)
		if err != nil {
			return err
		}
		out = rest
		if quit {
			return fmt.Errorf("%q after QUIT's +OK", line)
		}
		status, after, _ := strings.Cut(line, " ")
		text, err := pop3Text(line, after)
		switch {
		case err != nil:
			return err
		case status == "+" && strings.HasPrefix(line, "+ "): // a SASL challenge
		case status == "-ERR":
			if refusals++; refusals > lines+1 || text == "Disconnected for inactivity" {
				return fmt.Errorf("refusal %d to %d lines: %q", refusals, lines, line)
			}
		case status != "+OK":
			return fmt.Errorf("not a POP3 response: %q", line)
		case pop3MultiLine[text]:
			if out, err = pop3Body(out); err != nil {
				return err
			}
		case text == "Logging out":
			quit = true
		case pop3OwnOK[text]:
		case text == "Begin TLS negotiation now.":
			return gatewaytest.TLSRecords(out)
		case loggedIn:
			return nil // the login's +OK: the backend's from here
		default:
			return fmt.Errorf("+OK without a login: %q", line)
		}
	}
	if loggedIn {
		return errors.New("a login without its +OK")
	}
	return nil
}

// pop3Line cuts a line of at most 512 octets, CRLF included, without
// NUL, CR or LF, from out.
func pop3Line(out []byte) (string, []byte, error) {
	b, rest, ok := bytes.Cut(out, []byte("\r\n"))
	switch {
	case !ok:
		return "", nil, errors.New("output does not end with CRLF")
	case len(b)+2 > wire.DefaultMaxResponseLine || bytes.ContainsAny(b, "\r\n\x00"):
		return "", nil, fmt.Errorf("line of %d octets, or with CR, LF or NUL: %.80q", len(b), b)
	}
	return string(b), rest, nil
}

// pop3Text is the text of a status line after its status and its
// optional response code (RFC 2449 section 8: resp-level *("/"
// resp-level), of rchar); an error for a code that is not closed or a
// space that ends the line.
func pop3Text(line, after string) (string, error) {
	if !strings.HasPrefix(after, "[") || strings.HasPrefix(line, "+ ") {
		return after, nil
	}
	code, text, ok := strings.Cut(after[1:], "]")
	for _, level := range strings.Split(code, "/") {
		ok = ok && level != "" && !strings.ContainsFunc(level, func(r rune) bool { return r < 0x21 || r > 0x7e })
	}
	if !ok || text != "" && !strings.HasPrefix(text, " ") {
		return "", fmt.Errorf("bad response code: %q", line)
	}
	return strings.TrimPrefix(text, " "), nil
}

// pop3Body skips a multi-line body up to its "." line, its lines
// dot-stuffed.
func pop3Body(out []byte) ([]byte, error) {
	for len(out) > 0 {
		line, rest, err := pop3Line(out)
		if err != nil {
			return nil, err
		}
		out = rest
		if line == "." {
			return out, nil
		}
		if line == "" || strings.HasPrefix(line, ".") && !strings.HasPrefix(line, "..") {
			return nil, fmt.Errorf("body line %q", line)
		}
	}
	return nil, errors.New("multi-line body without its \".\"")
}
