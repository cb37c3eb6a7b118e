package submission_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/demo"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/submission"
	"github.com/pipegate/pipegate/submission/wire"
)

// FuzzClientSession drives whole pre-login sessions: each input is what
// a client sends after the greeting, then it half-closes. The proxy (with
// STARTTLS, plaintext logins, OAuth and a trusted loopback, in front of
// the demo's submission backend holding alice@a.test) must not panic nor
// log one, must answer in SMTP's reply grammar (checkSMTPSession) up to a
// login's 235, and must close the connection after the client's EOF.
func FuzzClientSession(f *testing.F) {
	ok := plain("", "alice@a.test", "alice-pw")
	xoauth := b64("user=alice@a.test\x01auth=Bearer token\x01\x01")
	mail := "MAIL FROM:<alice@a.test>\r\nRCPT TO:<carol@a.test>\r\nDATA\r\nSubject: fuzz\r\n\r\nhi\r\n.\r\nQUIT\r\n"
	for _, s := range []string{
		"EHLO c.test\r\nHELO c.test\r\nNOOP\r\nRSET\r\nRSET x\r\nQUIT\r\nNOOP\r\n",
		"EHLO c.test\r\nSTARTTLS\r\nEHLO c.test\r\n",
		"STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"STARTTLS x\r\nEHLO\r\nAUTH PLAIN " + ok + "\r\n",
		"EHLO c.test\r\nAUTH PLAIN " + ok + "\r\n" + mail,
		"EHLO c.test\r\nAUTH PLAIN\r\n" + ok + "\r\nEHLO c.test\r\nQUIT\r\n",
		"EHLO c.test\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN =\r\nAUTH PLAIN !!\r\nAUTH PLAIN a b c\r\nAUTH FOO\r\n",
		"EHLO c.test\r\nAUTH LOGIN\r\n" + b64("alice@a.test") + "\r\n" + b64("alice-pw") + "\r\n",
		"EHLO c.test\r\nAUTH LOGIN " + b64("alice@a.test") + "\r\n" + b64("alice-pw") + "\r\n",
		"EHLO c.test\r\nAUTH XOAUTH2 " + xoauth + "\r\n",
		"EHLO c.test\r\nAUTH XOAUTH2\r\n" + xoauth + "\r\n\r\n",
		"EHLO c.test\r\nAUTH OAUTHBEARER\r\nbjphPWFsaWNlQGEudGVzdCwBYXV0aD1CZWFyZXIgdAEB\r\n",
		"EHLO c.test\r\nAUTH PLAIN " + plain("", "alice@a.test", "x") + "\r\nAUTH PLAIN " + plain("", "bob@b.test", "x") +
			"\r\nAUTH PLAIN " + plain("carol@a.test", "alice@a.test", "alice-pw") + "\r\nNOOP\r\n",
		"XCLIENT ADDR=192.0.2.1 PORT=1234 TTL=2 HELO=x.test\r\nXCLIENT FOO\r\nEHLO c.test\r\n",
		"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nVRFY x\r\nHELP\r\nXFORWARD ADDR=1.2.3.4\r\nXYZZY\r\n",
		"EHLO c.test\r\nBDAT 10 LAST\r\n0123456789NOOP\r\n",
		"EHLO " + strings.Repeat("x", wire.DefaultMaxLine) + "\r\nNOOP\r\n",
		"EHLO c.test\r\nAUTH PLAIN " + strings.Repeat("A", submission.DefaultMaxAuthCommand) + "\r\nNOOP\r\n",
		strings.Repeat("y", 2*wire.DefaultMaxLine),
		"NO\x00OP\r\nNOOP\rNOOP\r\n\r\n\nNOOP\nEHLO \xff\r\n250 OK\r\n",
		strings.Repeat("NOOP\r\n", 32),
		"EHLO c.test\r\nAUTH PLAIN " + ok,
		"EHLO c.test\r\nNO",
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
	p := startProxy(f, &submission.Server{
		Server:          gatewaytest.FuzzServer(newRoutes(f, map[string][]string{"@a.test": {"submission://" + d.Backends[0].Submission + "?client_addr=none"}}), newPKI(f).server, submission.NewMetrics(reg), logs),
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})

	f.Fuzz(func(t *testing.T, in []byte) {
		conn, err := net.Dial("tcp", p.addr) // not dialRaw: binding first runs out of ports
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
		c.reply() // the greeting
		gatewaytest.FuzzSession(t, reg, "pipegate_submission_logins_total", logs, c.conn, c.r, in,
			func(out []byte, loggedIn bool) error { return checkSMTPSession(out, in, loggedIn) })
	})
}

// checkSMTPSession checks what the proxy sent after its greeting to a
// client that sent in: replies of RFC 5321 section 4.2 (lines "DDD-text"
// up to a "DDD text" or "DDD", one code per reply, 2xx to 5xx, at most
// 512 octets, CRLF included; an enhanced code of the reply's class, RFC
// 2034), up to a login's 235 (when loggedIn: the backend speaks after it)
// or STARTTLS's 220 (TLS records after it); nothing after 221 or 421; at
// most one 4xx or 5xx per client line, plus one for a last line without
// LF; no 421 for a login timeout, which means that the client's EOF went
// unnoticed. A session that was not ended by the proxy (221, 421, a line
// too long, BDAT) answers each of the client's lines once, SASL's
// included; a last line without LF gets none, but the replies held back
// for pipelining before it still go out.
func checkSMTPSession(out, in []byte, loggedIn bool) error {
	lines := bytes.Count(in, []byte("\n"))
	refusals, replies, last := 0, 0, ""
	for len(out) > 0 {
		code, text, rest, err := smtpReply(out)
		if err != nil {
			return err
		}
		if last != "" {
			return fmt.Errorf("%.80q after %s", out, last)
		}
		out, replies = rest, replies+1
		switch {
		case code >= 400:
			if refusals++; refusals > lines+1 || strings.Contains(text, "Timeout before authentication") {
				return fmt.Errorf("refusal %d to %d lines: %d %q", refusals, lines, code, text)
			}
			if code == 421 || strings.Contains(text, " too long (limit ") {
				last = fmt.Sprintf("%d %s", code, text)
			}
		case code == 221:
			last = "221"
		case code == 220 && text == "2.0.0 Ready to start TLS":
			return gatewaytest.TLSRecords(out)
		case code == 220, code == 250, code == 334: // XCLIENT's new greeting, EHLO and the like, SASL
		case code == 235 && loggedIn:
			return nil // the login's 235: the backend's from here
		default:
			return fmt.Errorf("not a reply before login: %d %q", code, text)
		}
	}
	if loggedIn {
		return errors.New("a login without its 235")
	}
	if last == "" && !bytes.Contains(bytes.ToUpper(in), []byte("BDAT")) && replies != lines {
		return fmt.Errorf("%d replies to %d lines", replies, lines)
	}
	return nil
}

// smtpReply cuts one reply from out: its code and its first line's text.
func smtpReply(out []byte) (code int, text string, rest []byte, err error) {
	for first := true; ; first = false {
		b, after, ok := bytes.Cut(out, []byte("\r\n"))
		if !ok {
			return 0, "", nil, errors.New("output does not end with CRLF")
		}
		line := string(b)
		if len(line)+2 > wire.DefaultMaxReplyLine || strings.ContainsAny(line, "\r\n\x00") || len(line) < 3 ||
			line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || line[2] < '0' || line[2] > '9' ||
			len(line) > 3 && line[3] != ' ' && line[3] != '-' {
			return 0, "", nil, fmt.Errorf("not a reply line: %.80q", line)
		}
		c := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if first {
			code, text = c, line[min(4, len(line)):]
			if e, _, _ := strings.Cut(text, " "); len(e) > 2 && e[1] == '.' && e[0] != line[0] && '0' <= e[0] && e[0] <= '9' {
				return 0, "", nil, fmt.Errorf("enhanced code of another class: %q", line)
			}
		} else if c != code {
			return 0, "", nil, fmt.Errorf("code %d in a reply of %d", c, code)
		}
		out = after
		if len(line) == 3 || line[3] == ' ' {
			return code, text, out, nil
		}
	}
}
