package sieve_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/demo"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/sieve"
	"github.com/pipegate/pipegate/sieve/wire"
)

// FuzzClientSession drives whole pre-login sessions: each input is what
// a client sends after the greeting, then it half-closes. The proxy (with
// STARTTLS, plaintext logins, OAuth and a trusted loopback, in front of
// the demo's ManageSieve backend holding alice@a.test) must not panic
// nor log one, must answer in ManageSieve's grammar (checkSieveSession)
// up to a login's OK, and must close the connection after the client's
// EOF.
func FuzzClientSession(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plain := b64("\x00alice@a.test\x00alice-pw")
	xoauth := b64("user=alice@a.test\x01auth=Bearer token\x01\x01")
	for _, s := range []string{
		"CAPABILITY\r\nNOOP\r\nNOOP \"tag\"\r\nLOGOUT\r\nNOOP\r\n",
		"STARTTLS\r\nCAPABILITY\r\n",
		"STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"STARTTLS x\r\nLOGOUT x\r\nCAPABILITY x\r\n",
		"AUTHENTICATE \"PLAIN\" \"" + plain + "\"\r\nLISTSCRIPTS\r\nPUTSCRIPT \"s\" {6+}\r\nkeep;\n\r\nLOGOUT\r\n",
		"AUTHENTICATE \"PLAIN\"\r\n\"" + plain + "\"\r\nCAPABILITY\r\n",
		"AUTHENTICATE \"PLAIN\" {" + strconv.Itoa(len(plain)) + "+}\r\n" + plain + "\r\nHAVESPACE \"s\" 10\r\n",
		"AUTHENTICATE \"PLAIN\"\r\n\"*\"\r\nAUTHENTICATE \"PLAIN\" \"\"\r\nAUTHENTICATE \"PLAIN\" \"!!\"\r\nAUTHENTICATE \"PLAIN\" \"=\"\r\n",
		"AUTHENTICATE \"LOGIN\"\r\n\"" + b64("alice@a.test") + "\"\r\n\"" + b64("alice-pw") + "\"\r\n",
		"AUTHENTICATE \"XOAUTH2\" \"" + xoauth + "\"\r\n",
		"AUTHENTICATE \"XOAUTH2\"\r\n\"" + xoauth + "\"\r\n\"\"\r\n",
		"AUTHENTICATE \"OAUTHBEARER\"\r\n\"bjphPWFsaWNlQGEudGVzdCwBYXV0aD1CZWFyZXIgdAEB\"\r\n",
		"AUTHENTICATE \"PLAIN\" \"" + b64("\x00alice@a.test\x00wrong") + "\"\r\nAUTHENTICATE \"PLAIN\" \"" + b64("\x00bob@b.test\x00x") +
			"\"\r\nAUTHENTICATE \"PLAIN\" \"" + b64("\x00carol@a.test\x00x") + "\"\r\nNOOP\r\n",
		"AUTHENTICATE\r\nAUTHENTICATE \"FOO\"\r\nAUTHENTICATE PLAIN\r\nAUTHENTICATE \"PLAIN\" \"a\" \"b\"\r\n",
		"XCLIENT ADDR=192.0.2.1 PORT=1234 TTL=2\r\nXCLIENT FOO\r\nCAPABILITY\r\n",
		"NOOP {5}\r\nab\r\nc\r\nNOOP {5+}\r\n\x00\r\n\"\\\r\nNOOP {99999999999+}\r\nNOOP\r\n",
		"NOOP \"" + strings.Repeat("x", wire.MaxQuoted+1) + "\"\r\nNOOP\r\n",
		"NOOP " + strings.Repeat("x", sieve.DefaultMaxLineLength+10) + "\r\nNOOP\r\n",
		strings.Repeat("y", sieve.DefaultMaxLineLength+10),
		"NO\x00OP\r\nNOOP\rNOOP\r\n\r\n\nNOOP\nNOOP \"a\rb\"\r\nNOOP \"\xff\"\r\nOK\r\n",
		"PUTSCRIPT \"s\" {5+}\r\nkeep;\r\nGETSCRIPT \"s\"\r\n" + strings.Repeat("NOOP\r\n", 31),
		"AUTHENTICATE \"PLAIN\" \"" + plain + "\"",
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
	addr := serveProxy(f, &sieve.Server{
		Server:          gatewaytest.FuzzServer(newRouter(f, "sieve://"+d.Backends[0].Sieve+"?client_addr=none"), newPKI(f).server, sieve.NewMetrics(reg), logs),
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}, gatewaytest.Listen(f))

	f.Fuzz(func(t *testing.T, in []byte) {
		c, _ := dial(t, "", addr)
		gatewaytest.FuzzSession(t, reg, "pipegate_sieve_logins_total", logs, c.c, c.r, in,
			func(out []byte, loggedIn bool) error {
				return checkSieveSession(out, bytes.Count(in, []byte("\n")), loggedIn)
			})
	})
}

// sieveOwnOK are the texts of the proxy's own OKs before login; any
// other OK is a login's, relayed from the backend.
var sieveOwnOK = map[string]bool{"Capability completed.": true, "NOOP completed.": true, "Updated": true}

// checkSieveSession checks what the proxy sent after its greeting to a
// client that sent lines lines: responses of RFC 5804 section 4 (OK, NO
// and BYE with an optional response code and string; data lines of one
// or two strings: capabilities and SASL challenges), each at most
// wire.DefaultMaxResponse octets, up to a login's OK (when loggedIn: the
// backend speaks after it) or STARTTLS's (TLS records after it); nothing
// after BYE or LOGOUT's OK; at most one NO or BYE per client line, plus
// one for a last line without LF; no BYE for a login timeout, which
// means that the client's EOF went unnoticed.
func checkSieveSession(out []byte, lines int, loggedIn bool) error {
	refusals, last := 0, ""
	for len(out) > 0 {
		s := &sieveScanner{b: out}
		kind, text, err := s.response()
		if err != nil {
			return fmt.Errorf("%v in %.80q", err, out)
		}
		if s.i > wire.DefaultMaxResponse {
			return fmt.Errorf("response of %d octets: %.80q", s.i, out)
		}
		if last != "" {
			return fmt.Errorf("%.80q after %s", out, last)
		}
		out = out[s.i:]
		switch {
		case kind == "": // a capability or a SASL challenge
		case kind == "NO" || kind == "BYE":
			if refusals++; refusals > lines+1 || text == "Disconnected for inactivity" {
				return fmt.Errorf("refusal %d to %d lines: %s %q", refusals, lines, kind, text)
			}
			if kind == "BYE" {
				last = "BYE"
			}
		case text == "Logout completed.":
			last = "LOGOUT's OK"
		case sieveOwnOK[text]:
		case text == "Begin TLS negotiation now.":
			return gatewaytest.TLSRecords(out)
		case loggedIn:
			return nil // the login's OK: the backend's from here
		default:
			return fmt.Errorf("OK without a login: %q", text)
		}
	}
	if loggedIn {
		return errors.New("a login without its OK")
	}
	return nil
}

// sieveScanner reads responses as a ManageSieve client does.
type sieveScanner struct {
	b []byte
	i int
}

// response reads one: its kind ("OK", "NO", "BYE"; "" for a data line)
// and its text ("" for none).
func (s *sieveScanner) response() (kind, text string, err error) {
	if kind = s.atom(); kind == "" {
		if _, err := s.string(); err != nil {
			return "", "", err
		}
		if s.space() {
			if _, err := s.string(); err != nil {
				return "", "", err
			}
		}
		return "", "", s.crlf()
	}
	if kind != "OK" && kind != "NO" && kind != "BYE" {
		return "", "", fmt.Errorf("response %q", kind)
	}
	if !s.space() {
		return kind, "", s.crlf()
	}
	if s.peek('(') {
		if err := s.code(); err != nil || !s.space() {
			return "", "", cmp.Or(err, s.crlf())
		}
	}
	if text, err = s.string(); err != nil {
		return "", "", err
	}
	return kind, text, s.crlf()
}

// code reads "(" atom *(SP (atom / string)) ")".
func (s *sieveScanner) code() error {
	s.i++
	if s.atom() == "" {
		return errors.New("response code without a name")
	}
	for s.space() {
		if s.atom() != "" {
			continue
		}
		if _, err := s.string(); err != nil {
			return err
		}
	}
	if !s.peek(')') {
		return errors.New("response code not closed")
	}
	s.i++
	return nil
}

// string reads a quoted string (UTF-8 without NUL, CR or LF; "\" only
// before "\" or DQUOTE) or a literal-s2c "{n}" CRLF and n octets.
func (s *sieveScanner) string() (string, error) {
	switch {
	case s.peek('"'):
		var b strings.Builder
		for s.i++; s.i < len(s.b); s.i++ {
			switch c := s.b[s.i]; {
			case c == '"':
				s.i++
				if !utf8.ValidString(b.String()) {
					return "", fmt.Errorf("quoted string %q is not UTF-8", b.String())
				}
				return b.String(), nil
			case c == 0 || c == '\r' || c == '\n':
				return "", fmt.Errorf("byte %#x in a quoted string", c)
			case c == '\\' && s.i+1 < len(s.b) && (s.b[s.i+1] == '\\' || s.b[s.i+1] == '"'):
				s.i++
				b.WriteByte(s.b[s.i])
			case c == '\\':
				return "", errors.New("lone backslash in a quoted string")
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("quoted string not closed")
	case s.peek('{'):
		end := bytes.Index(s.b[s.i:], []byte("}\r\n"))
		if end < 0 {
			return "", errors.New("literal without \"}\" CRLF")
		}
		n, err := strconv.Atoi(string(s.b[s.i+1 : s.i+end]))
		if err != nil || n < 0 || s.i+end+3+n > len(s.b) {
			return "", fmt.Errorf("literal size %q", s.b[s.i+1:s.i+end])
		}
		s.i += end + 3 + n
		return string(s.b[s.i-n : s.i]), nil
	}
	return "", errors.New("no string")
}

// atom reads letters, digits, "-" and "/", and returns them.
func (s *sieveScanner) atom() string {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '/') {
			break
		}
		s.i++
	}
	return string(s.b[start:s.i])
}

func (s *sieveScanner) peek(c byte) bool { return s.i < len(s.b) && s.b[s.i] == c }

func (s *sieveScanner) space() bool {
	if s.peek(' ') {
		s.i++
		return true
	}
	return false
}

func (s *sieveScanner) crlf() error {
	if !bytes.HasPrefix(s.b[s.i:], []byte("\r\n")) {
		return errors.New("no CRLF where the response ends")
	}
	s.i += 2
	return nil
}
