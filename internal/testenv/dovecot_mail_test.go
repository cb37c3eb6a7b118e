package testenv_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestDovecotMailProtocols starts one Dovecot serving IMAP, POP3,
// ManageSieve and submission, trusting 127.0.0.1, and talks to each with
// real clients (python3 poplib and smtplib, sieve-connect) and with small
// wire clients for what those cannot send (XCLIENT).
func TestDovecotMailProtocols(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users: map[string]string{"alice@a.test": "secret", "bob@b.test": "pw"},
		Messages: map[string][]string{"alice@a.test": {
			"Subject: one\r\n\r\nhello\r\n",
			"Subject: two\r\n\r\nworld\r\n",
		}},
		TrustedNetworks: []string{"127.0.0.1/32"},
		CertFile:        cert, KeyFile: key,
		Protocols: []string{testenv.IMAP, testenv.POP3, testenv.Sieve, testenv.Submission},
	})
	for _, a := range []string{d.Addr, d.TLSAddr, d.POP3Addr, d.POP3TLSAddr, d.SieveAddr, d.SubmissionAddr, d.SubmissionTLSAddr} {
		if a == "" {
			t.Fatalf("an address is missing: %+v", d)
		}
	}
	if d.Sink == nil {
		t.Fatal("no SMTP sink for submission")
	}
	caFile := ca.CertFile(t)
	tlsConf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}

	t.Run("pop3 poplib", func(t *testing.T) {
		out := python(t, pop3Script, "CA="+caFile, "PLAIN="+d.POP3Addr, "TLS="+d.POP3TLSAddr, "USER=alice@a.test", "PASS=secret")
		if want := "stls 2\npop3s 2\n"; out != want {
			t.Fatalf("poplib printed %q, want %q", out, want)
		}
		d.WaitLog(t, `pop3-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, .*TLS`)
	})

	t.Run("submission smtplib", func(t *testing.T) {
		out := python(t, submissionScript, "CA="+caFile, "PLAIN="+d.SubmissionAddr, "TLS="+d.SubmissionTLSAddr, "USER=alice@a.test", "PASS=secret")
		if want := "starttls sent\nsubmissions sent\n"; out != want {
			t.Fatalf("smtplib printed %q, want %q", out, want)
		}
		for _, via := range []string{"starttls", "submissions"} {
			m := d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool {
				return bytes.Contains(m.Data, []byte("Subject: via "+via+"\r\n"))
			})
			if m.From != "alice@a.test" || len(m.To) != 1 || m.To[0] != "carol@c.test" {
				t.Errorf("%s: envelope from %q to %q", via, m.From, m.To)
			}
		}
		d.WaitLog(t, `submission-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.1, `)
	})

	t.Run("managesieve", func(t *testing.T) {
		s := dialSieve(t, "127.0.0.1", d.SieveAddr)
		caps := s.response(t, "OK")
		for _, c := range []string{`"STARTTLS"`, `"SASL" "PLAIN LOGIN"`, `"SIEVE" "`, `"VERSION" "1.0"`} {
			if !strings.Contains(caps, c) {
				t.Errorf("greeting has no %s:\n%s", c, caps)
			}
		}
		s.send(t, "STARTTLS")
		s.response(t, "OK")
		s.startTLS(t, tlsConf)
		if caps := s.response(t, "OK"); strings.Contains(caps, `"STARTTLS"`) || !strings.Contains(caps, `"SASL"`) {
			t.Errorf("capabilities after STARTTLS:\n%s", caps)
		}
		s.authenticate(t, "alice@a.test", "secret")
		script := "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"INBOX\"; }\r\n"
		s.send(t, fmt.Sprintf("PUTSCRIPT \"pg\" {%d+}\r\n%s", len(script), script))
		s.response(t, "OK")
		s.send(t, `SETACTIVE "pg"`)
		s.response(t, "OK")
		s.send(t, "LISTSCRIPTS")
		if list := s.response(t, "OK"); !strings.Contains(list, `"pg" ACTIVE`) {
			t.Errorf("LISTSCRIPTS:\n%s", list)
		}
		s.send(t, `GETSCRIPT "pg"`)
		if got := s.response(t, "OK"); !strings.Contains(got, script) {
			t.Errorf("GETSCRIPT:\n%q", got)
		}
		s.send(t, "LOGOUT")
		s.response(t, "OK")
		stored, err := os.ReadFile(filepath.Join(d.Home("alice@a.test"), "sieve", "pg.sieve"))
		if err != nil || string(stored) != script {
			t.Errorf("stored script %q, %v", stored, err)
		}
		d.WaitLog(t, `managesieve-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.1, .*TLS`)
	})

	t.Run("sieve-connect", func(t *testing.T) {
		dir := t.TempDir()
		local := filepath.Join(dir, "in.sieve")
		script := "require \"reject\";\nif header :contains \"subject\" \"spam\" { reject \"no\"; }\n"
		if err := os.WriteFile(local, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		sc := testenv.SieveConnect{Addr: d.SieveAddr, User: "bob@b.test", Password: "pw", CAFile: caFile, TLSName: "localhost"}
		run := func(args ...string) string {
			t.Helper()
			return sc.Run(t, args...)
		}
		run("--upload", "--localsieve", local, "--remotesieve", "sc")
		run("--activate", "--remotesieve", "sc")
		if list := run("--list"); !strings.Contains(list, `"sc" ACTIVE`) {
			t.Errorf("sieve-connect --list:\n%s", list)
		}
		back := filepath.Join(dir, "out.sieve")
		run("--download", "--remotesieve", "sc", "--localsieve", back)
		if got, err := os.ReadFile(back); err != nil || strings.ReplaceAll(string(got), "\r\n", "\n") != script {
			t.Errorf("downloaded %q, %v; want %q", got, err, script)
		}
	})

	t.Run("xclient pop3", func(t *testing.T) {
		c, r := dialLines(t, "127.0.0.1", d.POP3Addr)
		if g := readLine(t, r); !strings.HasPrefix(g, "+OK [XCLIENT]") {
			t.Fatalf("trusted greeting %q", g)
		}
		fmt.Fprint(c, "XCLIENT ADDR=10.1.2.3 PORT=5555 SESSION=pgpop3 TTL=3\r\n")
		expectPrefix(t, r, "+OK")
		fmt.Fprint(c, "USER bob@b.test\r\nPASS pw\r\nSTAT\r\nQUIT\r\n")
		expectPrefix(t, r, "+OK")
		expectPrefix(t, r, "+OK")
		expectPrefix(t, r, "+OK 0 0")
		d.WaitLog(t, `pop3-login: Info: Login: user=<bob@b.test>, method=PLAIN, rip=10\.1\.2\.3, lip=127\.0\.0\.1, .*session=<pgpop3>`)

		u, ur := dialLines(t, "127.0.0.2", d.POP3Addr)
		if g := readLine(t, ur); !strings.HasPrefix(g, "+OK") || strings.Contains(g, "XCLIENT") {
			t.Fatalf("untrusted greeting %q", g)
		}
		// Dovecot answers +OK but ignores XCLIENT from an untrusted address.
		fmt.Fprint(u, "XCLIENT ADDR=10.1.2.9 PORT=5559\r\nUSER bob@b.test\r\nPASS pw\r\nQUIT\r\n")
		expectPrefix(t, ur, "+OK You are not from trusted IP")
		expectPrefix(t, ur, "+OK")
		expectPrefix(t, ur, "+OK")
		d.WaitLog(t, `pop3-login: Info: Login: user=<bob@b.test>, method=PLAIN, rip=127\.0\.0\.2, lip=127\.0\.0\.1`)
	})

	t.Run("xclient submission", func(t *testing.T) {
		c, r := dialLines(t, "127.0.0.1", d.SubmissionAddr)
		expectPrefix(t, r, "220 ")
		fmt.Fprint(c, "EHLO proxy.test\r\n")
		if ehlo := smtpReply(t, r, "250"); !strings.Contains(ehlo, "XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL") {
			t.Fatalf("trusted EHLO:\n%s", ehlo)
		}
		fmt.Fprint(c, "XCLIENT ADDR=10.1.2.4 PORT=5556 HELO=client.test PROTO=ESMTP\r\n")
		smtpReply(t, r, "220")
		fmt.Fprint(c, "EHLO proxy.test\r\n")
		smtpReply(t, r, "250")
		plain := base64.StdEncoding.EncodeToString([]byte("\x00bob@b.test\x00pw"))
		fmt.Fprintf(c, "AUTH PLAIN %s\r\n", plain)
		smtpReply(t, r, "235")
		fmt.Fprint(c, "MAIL FROM:<bob@b.test>\r\n")
		smtpReply(t, r, "250")
		fmt.Fprint(c, "RCPT TO:<dave@d.test>\r\n")
		smtpReply(t, r, "250")
		fmt.Fprint(c, "DATA\r\n")
		smtpReply(t, r, "354")
		fmt.Fprint(c, "Subject: via xclient\r\n\r\nhi\r\n.\r\n")
		smtpReply(t, r, "250")
		fmt.Fprint(c, "QUIT\r\n")
		smtpReply(t, r, "221")
		m := d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool {
			return bytes.Contains(m.Data, []byte("Subject: via xclient\r\n"))
		})
		// The Received line names the EHLO after XCLIENT, not XCLIENT's HELO=.
		if !bytes.HasPrefix(m.Data, []byte("Received: from proxy.test ([10.1.2.4])\r\n\tby dovecot.test with ESMTPA")) {
			t.Errorf("relayed message does not name the XCLIENT address:\n%s", m.Data)
		}
		d.WaitLog(t, `submission-login: Info: Login: user=<bob@b.test>, method=PLAIN, rip=10\.1\.2\.4, lip=127\.0\.0\.1`)

		u, ur := dialLines(t, "127.0.0.2", d.SubmissionAddr)
		expectPrefix(t, ur, "220 ")
		fmt.Fprint(u, "EHLO proxy.test\r\n")
		if ehlo := smtpReply(t, ur, "250"); strings.Contains(ehlo, "XCLIENT") {
			t.Fatalf("untrusted EHLO offers XCLIENT:\n%s", ehlo)
		}
		fmt.Fprint(u, "XCLIENT ADDR=10.1.2.9\r\n")
		expectPrefix(t, ur, "550 5.7.14 You are not from trusted IP")
	})

	t.Run("xclient managesieve", func(t *testing.T) {
		s := dialSieve(t, "127.0.0.1", d.SieveAddr)
		if caps := s.response(t, "OK"); !strings.Contains(caps, `"XCLIENT"`) {
			t.Fatalf("trusted capabilities have no XCLIENT:\n%s", caps)
		}
		s.send(t, "XCLIENT ADDR=10.1.2.5 PORT=5557")
		s.response(t, "OK")
		s.authenticate(t, "bob@b.test", "pw")
		s.send(t, "LOGOUT")
		s.response(t, "OK")
		d.WaitLog(t, `managesieve-login: Info: Login: user=<bob@b.test>, method=PLAIN, rip=10\.1\.2\.5, lip=127\.0\.0\.1`)

		u := dialSieve(t, "127.0.0.2", d.SieveAddr)
		if caps := u.response(t, "OK"); strings.Contains(caps, "XCLIENT") {
			t.Fatalf("untrusted capabilities offer XCLIENT:\n%s", caps)
		}
		u.send(t, "XCLIENT ADDR=10.1.2.9")
		if no := u.response(t, "NO"); no != "NO \"You are not from trusted IP\"\r\n" {
			t.Errorf("untrusted XCLIENT: %q", no)
		}
	})

	t.Run("imap id", func(t *testing.T) {
		c, r := dialLines(t, "127.0.0.1", d.Addr)
		expectPrefix(t, r, "* OK")
		fmt.Fprint(c, "a ID (\"x-originating-ip\" \"10.1.2.6\" \"x-originating-port\" \"5558\")\r\nb LOGIN bob@b.test pw\r\nc LOGOUT\r\n")
		expect(t, r, "a OK")
		expect(t, r, "b OK")
		d.WaitLog(t, `imap-login: Info: Login: user=<bob@b.test>, method=PLAIN, rip=10\.1\.2\.6, lip=127\.0\.0\.1`)
	})
}

// TestDovecotUnknownProtocol checks that a wrong protocol name is refused
// before anything starts.
func TestDovecotUnknownProtocol(t *testing.T) {
	_, err := testenv.NewDovecot("/nonexistent/dovecot", testenv.DovecotOptions{Protocols: []string{"imap", "smtp"}})
	if err == nil || !strings.Contains(err.Error(), `unknown protocol "smtp"`) {
		t.Fatalf("err = %v", err)
	}
}

const pop3Script = `
import os, poplib, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
def hp(v):
    h, p = v.rsplit(":", 1)
    return h, int(p)
p = poplib.POP3(*hp(os.environ["PLAIN"]), timeout=10)
p.stls(context=ctx)
p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
print("stls", p.stat()[0]); p.quit()
p = poplib.POP3_SSL(*hp(os.environ["TLS"]), context=ctx, timeout=10)
p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
print("pop3s", p.stat()[0]); p.quit()
`

const submissionScript = `
import os, smtplib, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
def hp(v):
    h, p = v.rsplit(":", 1)
    return h, int(p)
user, pw = os.environ["USER"], os.environ["PASS"]
def send(s, via):
    s.user, s.password = user, pw
    code, _ = s.auth("PLAIN", s.auth_plain)
    assert code == 235, code
    s.sendmail(user, ["carol@c.test"], "From: %s\r\nTo: carol@c.test\r\nSubject: via %s\r\n\r\nhello\r\n" % (user, via))
    s.quit()
    print(via, "sent")
s = smtplib.SMTP(*hp(os.environ["PLAIN"]), timeout=10)
s.ehlo(); s.starttls(context=ctx); s.ehlo()
send(s, "starttls")
s = smtplib.SMTP_SSL(*hp(os.environ["TLS"]), context=ctx, timeout=10)
s.ehlo()
send(s, "submissions")
`

// python runs script with python3 and the given environment additions and
// returns its standard output; it fails the test on a non-zero exit.
func python(t *testing.T, script string, env ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, "python3", "python3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", script)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s%s", err, out, stderr.String())
	}
	return string(out)
}

// dialLines connects from the loopback address src with a deadline and
// closes the connection at the end of the test.
func dialLines(t *testing.T, src, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, line)
	}
	return line
}

// expectPrefix reads one line and fails unless it starts with prefix.
func expectPrefix(t *testing.T, r *bufio.Reader, prefix string) string {
	t.Helper()
	line := readLine(t, r)
	if !strings.HasPrefix(line, prefix) {
		t.Fatalf("got %q, want a line starting with %q", line, prefix)
	}
	return line
}

// smtpReply reads a (multi-line) SMTP reply and fails unless its code is
// code.
func smtpReply(t *testing.T, r *bufio.Reader, code string) string {
	t.Helper()
	lines := smtpLines(t, r)
	all := strings.Join(lines, "")
	if !strings.HasPrefix(lines[len(lines)-1], code) {
		t.Fatalf("got reply\n%s, want code %s", all, code)
	}
	return all
}

// smtpLines reads the lines of a (multi-line) SMTP reply, each with its
// CRLF.
func smtpLines(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var lines []string
	for range 100 {
		line := readLine(t, r)
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
	t.Fatalf("reply longer than 100 lines:\n%s", strings.Join(lines, ""))
	return nil
}

// sieveConn is a minimal ManageSieve client (RFC 5804) for the test.
type sieveConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialSieve(t *testing.T, src, addr string) *sieveConn {
	t.Helper()
	c, r := dialLines(t, src, addr)
	return &sieveConn{c: c, r: r}
}

func (s *sieveConn) send(t *testing.T, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintf(s.c, "%s\r\n", cmd); err != nil {
		t.Fatal(err)
	}
}

var sieveLiteral = regexp.MustCompile(`\{(\d+)\}\r\n$`)

// response reads lines (and the literals they announce) up to the final
// OK, NO or BYE, fails unless it starts with want and returns everything
// read.
func (s *sieveConn) response(t *testing.T, want string) string {
	t.Helper()
	var all strings.Builder
	for range 1000 {
		line := readLine(t, s.r)
		all.WriteString(line)
		if m := sieveLiteral.FindStringSubmatch(line); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			buf := make([]byte, n)
			if _, err := io.ReadFull(s.r, buf); err != nil {
				t.Fatalf("literal: %v", err)
			}
			all.Write(buf)
			continue
		}
		for _, final := range []string{"OK", "NO", "BYE"} {
			if line == final+"\r\n" || strings.HasPrefix(line, final+" ") {
				if final != want {
					t.Fatalf("got\n%s, want %s", all.String(), want)
				}
				return all.String()
			}
		}
	}
	t.Fatalf("response longer than 1000 lines:\n%s", all.String())
	return ""
}

func (s *sieveConn) startTLS(t *testing.T, conf *tls.Config) {
	t.Helper()
	tc := tls.Client(s.c, conf)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STARTTLS handshake: %v", err)
	}
	s.c, s.r = tc, bufio.NewReader(tc)
}

func (s *sieveConn) authenticate(t *testing.T, user, pass string) {
	t.Helper()
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	s.send(t, fmt.Sprintf(`AUTHENTICATE "PLAIN" "%s"`, plain))
	s.response(t, "OK")
}
