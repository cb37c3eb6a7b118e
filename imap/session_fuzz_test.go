package imap_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/imap/wire"
	"github.com/pipegate/pipegate/internal/gatewaytest"
)

// FuzzClientSession drives whole pre-login sessions: each input is what
// a client sends after the greeting, then it half-closes. The proxy (with
// STARTTLS, plaintext logins, OAuth and a trusted loopback, in front of an
// in-memory backend holding alice@a.test) must not panic nor log one,
// must answer in IMAP's response grammar (checkIMAPSession) up to a
// login's OK, and must close the connection after the client's EOF.
func FuzzClientSession(f *testing.F) {
	b64 := base64.StdEncoding.EncodeToString
	plain := b64([]byte("\x00alice@a.test\x00apass"))
	xoauth := b64([]byte("user=alice@a.test\x01auth=Bearer token\x01\x01"))
	for _, s := range []string{
		"a CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\nd NOOP\r\n",
		"a STARTTLS\r\nb NOOP\r\n",
		"a STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"a STARTTLS x\r\nb STARTTLS\r\n",
		"a LOGIN alice@a.test apass\r\nb SELECT INBOX\r\nc FETCH 1:* (FLAGS)\r\nd LOGOUT\r\n",
		"a LOGIN alice@a.test apass\r\nb IDLE\r\nDONE\r\n",
		"a LOGIN alice@a.test wrong\r\nb LOGIN \"alice@a.test\" \"\"\r\nc LOGIN bob@b.test x\r\nd NOOP\r\n",
		"a LOGIN {12}\r\nalice@a.test {5}\r\napass\r\nb NOOP\r\n",
		"a LOGIN {12+}\r\nalice@a.test {5+}\r\napass\r\n",
		"a LOGIN alice@a.test {99999999999}\r\nb NOOP\r\n",
		"a XYZZY {5+}\r\nab\r\nc {3}\r\nb NOOP\r\n",
		"a AUTHENTICATE PLAIN " + plain + "\r\nb NOOP\r\n",
		"a AUTHENTICATE PLAIN\r\n" + plain + "\r\nb LIST \"\" *\r\n",
		"a AUTHENTICATE PLAIN\r\n*\r\nb AUTHENTICATE PLAIN =\r\nc AUTHENTICATE PLAIN !!\r\n",
		"a AUTHENTICATE LOGIN\r\n" + b64([]byte("alice@a.test")) + "\r\n" + b64([]byte("apass")) + "\r\n",
		"a AUTHENTICATE XOAUTH2 " + xoauth + "\r\n",
		"a AUTHENTICATE XOAUTH2\r\n" + xoauth + "\r\n\r\n",
		"a AUTHENTICATE OAUTHBEARER\r\nbjphPWFsaWNlQGEudGVzdCwBYXV0aD1CZWFyZXIgdAEB\r\n",
		"a ID (\"name\" \"fuzz\" \"x-originating-ip\" \"192.0.2.1\" \"x-proxy-ttl\" \"1\")\r\nb ID NIL\r\nc ID (\"a\")\r\n",
		"a NOOP " + strings.Repeat("x", imap.DefaultMaxLineLength+10) + "\r\nb NOOP\r\n",
		strings.Repeat("y", imap.DefaultMaxLineLength+10),
		"a NO\x00OP\r\nb NOOP\rc NOOP\r\n\r\n\nd NOOP\n* NOOP\r\n+ NOOP\r\n",
		"a LOGIN \"al\x00ice\" x\r\nb LOGIN \"a\\\"b\" \"\\\\\"\r\n",
		"a SELECT INBOX\r\nb XCLIENT ADDR=192.0.2.1\r\n" + strings.Repeat("c NOOP\r\n", 32),
		"a LOGIN alice@a.test apass",
		"a LOGIN alice@a.test\r\nb AUTHENTICATE\r\nc AUTHENTICATE FOO\r\n",
	} {
		f.Add([]byte(s))
	}

	reg := prometheus.NewRegistry()
	logs := &gatewaytest.PanicLog{}
	be := startBackend(f, map[string]string{"alice@a.test": "apass"}, backendOpts{})
	srv := &imap.Server{
		Server:          gatewaytest.FuzzServer(routes(f, map[string][]string{"@a.test": {plainURL(be.addr)}}), newPKI(f).server, imap.NewMetrics(reg), logs),
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	p := startProxy(f, srv)

	f.Fuzz(func(t *testing.T, in []byte) {
		c := dialRaw(t, p.addr)
		gatewaytest.FuzzSession(t, reg, "pipegate_imap_logins_total", logs, c.conn, io.MultiReader(bytes.NewReader(c.r.buf), c.conn), in,
			func(out []byte, loggedIn bool) error {
				return checkIMAPSession(out, bytes.Count(in, []byte("\n")), loggedIn)
			})
	})
}

// imapOwnOK are the texts of the proxy's own tagged OKs before login;
// any other tagged OK is a login's, relayed from the backend.
var imapOwnOK = map[string]bool{
	"CAPABILITY completed": true, "NOOP completed": true, "ID completed": true, "LOGOUT completed": true,
}

// imapMaxLine bounds a response line: a tag echoed from a command line
// of the proxy's limit, and a text of at most 400 bytes (wire.SafeText).
const imapMaxLine = imap.DefaultMaxLineLength + 512

// checkIMAPSession checks what the proxy sent after its greeting to a
// client that sent lines lines: CRLF-terminated responses (RFC 9051
// section 7: "+ " continuations, untagged CAPABILITY, ID, BAD, NO and
// BYE, tagged OK, NO and BAD) up to a login's OK (when loggedIn: the
// backend speaks after it) or STARTTLS's (TLS records after it); nothing
// after BYE but LOGOUT's OK; at most one refusal (NO, BAD) per client
// line, plus one for a last line without LF; no BYE for a login timeout,
// which means that the client's EOF went unnoticed.
func checkIMAPSession(out []byte, lines int, loggedIn bool) error {
	refusals, bye := 0, ""
	for len(out) > 0 {
		b, rest, ok := bytes.Cut(out, []byte("\r\n"))
		if !ok {
			return errors.New("output does not end with CRLF")
		}
		out = rest
		line := string(b)
		if len(line)+2 > imapMaxLine || strings.ContainsAny(line, "\r\n\x00") {
			return fmt.Errorf("line of %d bytes, or with CR, LF or NUL: %.80q", len(line), line)
		}
		tag, resp, _ := strings.Cut(line, " ")
		typ, text, _ := strings.Cut(resp, " ")
		if bye != "" && !(bye == "Logging out" && typ == "OK" && text == "LOGOUT completed") {
			return fmt.Errorf("%q after BYE %q", line, bye)
		}
		switch {
		case tag == "+" && strings.HasPrefix(line, "+ "):
			continue // a literal's or SASL's continuation
		case tag == "*" && (typ == "CAPABILITY" || typ == "ID"):
			if err := imapData(typ, text); err != nil {
				return err
			}
			continue
		case tag == "*" && typ == "BYE":
			if bye = imapText(text); bye == "" || bye == "Login timeout" {
				return fmt.Errorf("BYE %q", line)
			}
			continue
		case !imapTag(tag) && tag != "*":
			return fmt.Errorf("bad tag: %q", line)
		case typ == "NO" || typ == "BAD":
			if refusals++; refusals > lines+1 {
				return fmt.Errorf("%d refusals to %d lines: %q", refusals, lines, line)
			}
		case typ != "OK" || tag == "*":
			return fmt.Errorf("not a pre-login response: %q", line)
		case imapOwnOK[text]:
		case text == "Begin TLS negotiation now":
			return gatewaytest.TLSRecords(out)
		case loggedIn:
			return nil // the login's OK: the backend's from here
		default:
			return fmt.Errorf("OK without a login: %q", line)
		}
		if imapText(text) == "" {
			return fmt.Errorf("no text: %q", line)
		}
	}
	if loggedIn {
		return errors.New("a login without its OK")
	}
	return nil
}

// imapTag reports whether tag is one a client may send (RFC 9051: 1*<any
// ASTRING-CHAR except "+">); octets over 0x7f too, which the proxy
// takes and echoes.
func imapTag(tag string) bool {
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; c <= ' ' || c == 0x7f || strings.IndexByte(`(){%*"\+`, c) >= 0 {
			return false
		}
	}
	return tag != ""
}

// imapText is resp-text's text after an optional "[code]", or "" when
// the code is not closed or no text follows it.
func imapText(s string) string {
	if strings.HasPrefix(s, "[") {
		code, rest, ok := strings.Cut(s[1:], "]")
		if !ok || code == "" || !strings.HasPrefix(rest, " ") {
			return ""
		}
		s = rest[1:]
	}
	return s
}

// imapData checks an untagged CAPABILITY (atoms) or ID (a parenthesized
// list) before login.
func imapData(typ, text string) error {
	if typ == "ID" {
		if !strings.HasPrefix(text, "(") || !strings.HasSuffix(text, ")") {
			return fmt.Errorf("ID %q", text)
		}
		return nil
	}
	for _, c := range strings.Split(text, " ") {
		if !wire.IsAtom(c) {
			return fmt.Errorf("CAPABILITY %q: %q is no atom", text, c)
		}
	}
	return nil
}
