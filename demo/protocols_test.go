package demo_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/pipegate/pipegate/demo"
)

// lineClient is a raw client for the line protocols (POP3, ManageSieve).
type lineClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string, tlsConf *tls.Config) *lineClient {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		c, err = tls.Dial("tcp", addr, tlsConf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineClient{t: t, c: c, r: bufio.NewReader(c)}
}

func (lc *lineClient) send(line string) {
	lc.t.Helper()
	if _, err := lc.c.Write([]byte(line + "\r\n")); err != nil {
		lc.t.Fatalf("send %q: %v", line, err)
	}
}

func (lc *lineClient) line() string {
	lc.t.Helper()
	l, err := lc.r.ReadString('\n')
	if err != nil {
		lc.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// until reads lines up to and including the first for which last is true
// (at most 100).
func (lc *lineClient) until(last func(string) bool) []string {
	lc.t.Helper()
	var lines []string
	for range 100 {
		l := lc.line()
		lines = append(lines, l)
		if last(l) {
			return lines
		}
	}
	lc.t.Fatalf("no end in %q", lines)
	return nil
}

// startTLS turns the connection to TLS after a STLS or STARTTLS answer.
func (lc *lineClient) startTLS(conf *tls.Config) {
	lc.t.Helper()
	if lc.r.Buffered() > 0 {
		lc.t.Fatal("bytes after the STARTTLS answer")
	}
	tc := tls.Client(lc.c, conf)
	if err := tc.Handshake(); err != nil {
		lc.t.Fatal(err)
	}
	lc.c, lc.r = tc, bufio.NewReader(tc)
}

func (lc *lineClient) expect(prefix string) string {
	lc.t.Helper()
	l := lc.line()
	if !strings.HasPrefix(l, prefix) {
		lc.t.Fatalf("got %q, want %q...", l, prefix)
	}
	return l
}

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func tlsConfig(d *demo.Demo) *tls.Config {
	return &tls.Config{RootCAs: d.CertPool(), ServerName: "127.0.0.1"}
}

// pop3Login connects in mode and logs a in: USER and PASS in plain, AUTH
// PLAIN after STLS and on the implicit-TLS port.
func pop3Login(t *testing.T, d *demo.Demo, a demo.Account, mode string) *lineClient {
	t.Helper()
	var lc *lineClient
	if mode == "tls" {
		lc = dialLine(t, d.POP3TLSAddr, tlsConfig(d))
	} else {
		lc = dialLine(t, d.POP3Addr, nil)
	}
	lc.expect("+OK")
	switch mode {
	case "plain":
		lc.send("USER " + a.User)
		lc.expect("+OK")
		lc.send("PASS " + a.Password)
	case "stls":
		lc.send("STLS")
		lc.expect("+OK")
		lc.startTLS(tlsConfig(d))
		fallthrough
	default:
		lc.send("AUTH PLAIN " + plainIR(a.User, a.Password))
	}
	if l := lc.expect("+OK"); !strings.Contains(l, fmt.Sprintf("backend %d", a.Backend+1)) {
		t.Fatalf("login answer %q names another backend than %d", l, a.Backend+1)
	}
	return lc
}

// pop3Subjects lists the maildrop and reads each message's Subject.
func pop3Subjects(t *testing.T, lc *lineClient) []string {
	t.Helper()
	lc.send("STAT")
	var n, size int
	if _, err := fmt.Sscanf(lc.expect("+OK"), "+OK %d %d", &n, &size); err != nil {
		t.Fatal(err)
	}
	lc.send("LIST")
	lc.expect("+OK")
	if list := lc.until(func(l string) bool { return l == "." }); len(list) != n+1 {
		t.Fatalf("LIST %q, STAT said %d", list, n)
	}
	var subjects []string
	for i := 1; i <= n; i++ {
		lc.send(fmt.Sprintf("RETR %d", i))
		lc.expect("+OK")
		for _, l := range lc.until(func(l string) bool { return l == "." }) {
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				subjects = append(subjects, s)
			}
		}
	}
	lc.send("QUIT")
	lc.expect("+OK")
	return subjects
}

// TestPOP3 reads every account's maildrop through the POP3 proxy, in
// plain, after STLS and over implicit TLS.
func TestPOP3(t *testing.T) {
	d := startDemo(t)
	for _, a := range d.Accounts {
		for _, mode := range []string{"plain", "stls", "tls"} {
			t.Run(a.User+"/"+mode, func(t *testing.T) {
				got := strings.Join(pop3Subjects(t, pop3Login(t, d, a, mode)), "|")
				if want := strings.Join(a.Subjects, "|"); got != want {
					t.Fatalf("subjects %q, want %q", got, want)
				}
			})
		}
	}
	t.Run("wrong password", func(t *testing.T) {
		lc := dialLine(t, d.POP3Addr, nil)
		lc.expect("+OK")
		lc.send("AUTH PLAIN " + plainIR(d.Accounts[0].User, "wrong"))
		lc.expect("-ERR")
	})
}

// TestSieve uploads, activates and reads back a script through the
// ManageSieve proxy after STARTTLS, then sees it from a second session.
func TestSieve(t *testing.T) {
	d := startDemo(t)
	bob := d.Accounts[2]
	status := func(l string) bool {
		return strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE")
	}
	session := func(starttls bool) *lineClient {
		lc := dialLine(t, d.SieveAddr, nil)
		caps := lc.until(status)
		if !strings.HasPrefix(caps[len(caps)-1], "OK") {
			t.Fatalf("greeting %q", caps)
		}
		if starttls {
			lc.send("STARTTLS")
			lc.expect("OK")
			lc.startTLS(tlsConfig(d))
			lc.until(status)
		}
		lc.send(`AUTHENTICATE "PLAIN" "` + plainIR(bob.User, bob.Password) + `"`)
		if l := lc.expect("OK"); !strings.Contains(l, "backend 2") {
			t.Fatalf("login answer %q: not backend 2", l)
		}
		return lc
	}
	lc := session(true)
	lc.send(fmt.Sprintf(`PUTSCRIPT "vacation" {%d+}`+"\r\n%s", len(demo.DemoScript), demo.DemoScript))
	lc.expect("OK")
	lc.send(`SETACTIVE "vacation"`)
	lc.expect("OK")
	lc.send(`DELETESCRIPT "vacation"`)
	lc.expect("NO (ACTIVE)")
	lc.send("LOGOUT")
	lc.expect("OK")

	lc = session(false)
	lc.send("LISTSCRIPTS")
	if got := lc.until(status); strings.Join(got, "|") != `"vacation" ACTIVE|OK "Listscripts completed"` {
		t.Fatalf("LISTSCRIPTS: %q", got)
	}
	lc.send(`GETSCRIPT "vacation"`)
	lc.expect(fmt.Sprintf("{%d}", len(demo.DemoScript)))
	got := make([]byte, len(demo.DemoScript))
	if _, err := io.ReadFull(lc.r, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != demo.DemoScript {
		t.Fatalf("GETSCRIPT %q, want %q", got, demo.DemoScript)
	}
	lc.expect("") // the CRLF after the literal
	lc.expect("OK")
	lc.send(`GETSCRIPT "nope"`)
	lc.expect("NO (NONEXISTENT)")
}

// TestSubmission sends a message through the submission proxy (after
// STARTTLS, and over implicit TLS) and finds it in the recipient's INBOX
// (IMAP) and maildrop (POP3) on the other host.
func TestSubmission(t *testing.T) {
	d := startDemo(t)
	alice, carol, bob := d.Accounts[0], d.Accounts[1], d.Accounts[2]
	send := func(c *smtp.Client, err error, from demo.Account, mailFrom, subject string) error {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Auth(sasl.NewPlainClient("", from.User, from.Password)); err != nil {
			t.Fatalf("AUTH: %v", err)
		}
		msg := "From: <" + mailFrom + ">\r\nTo: <" + bob.User + ">\r\nSubject: " + subject + "\r\n\r\nHello Bob.\r\n"
		if err := c.SendMail(mailFrom, []string{bob.User}, strings.NewReader(msg)); err != nil {
			return err
		}
		return c.Quit()
	}
	c, err := smtp.DialStartTLS(d.SubmissionAddr, tlsConfig(d))
	if err := send(c, err, alice, alice.User, "via 587"); err != nil {
		t.Fatal(err)
	}
	c, err = smtp.DialTLS(d.SubmissionTLSAddr, tlsConfig(d))
	if err := send(c, err, carol, carol.User, "via 465"); err != nil {
		t.Fatal(err)
	}
	c, err = smtp.DialStartTLS(d.SubmissionAddr, tlsConfig(d))
	var serr *smtp.SMTPError
	if err := send(c, err, carol, alice.User, "forged"); !errors.As(err, &serr) || serr.Code != 553 {
		t.Fatalf("a sender other than the login: %v, want 553", err)
	}
	if n := d.Delivered(); n != 2 {
		t.Fatalf("delivered %d, want 2", n)
	}
	want := append(append([]string(nil), bob.Subjects...), "via 587", "via 465")
	if got := pop3Subjects(t, pop3Login(t, d, bob, "plain")); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("POP3 subjects %q, want %q", got, want)
	}
	ic, err := imapclient.DialInsecure(d.PlainAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob.Subjects = want
	if got := subjects(t, ic, bob); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("IMAP subjects %q, want %q", got, want)
	}
}
