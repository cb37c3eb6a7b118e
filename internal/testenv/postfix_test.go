package testenv_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// smtpChat is a line-level SMTP client for the harness tests.
type smtpChat struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialSMTP(t *testing.T, src, addr string) *smtpChat {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	s := &smtpChat{t: t, c: c, r: bufio.NewReader(c)}
	if r := s.reply(); !strings.HasPrefix(r, "220 postfix.test ESMTP") {
		t.Fatalf("greeting %q", r)
	}
	return s
}

// reply reads one (multi-line) reply and returns its lines joined by "\n".
func (s *smtpChat) reply() string {
	s.t.Helper()
	lines := smtpLines(s.t, s.r)
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, "\r\n")
	}
	return strings.Join(lines, "\n")
}

// cmd sends line and returns the reply, failing unless it starts with
// want.
func (s *smtpChat) cmd(line, want string) string {
	s.t.Helper()
	if _, err := s.c.Write([]byte(line + "\r\n")); err != nil {
		s.t.Fatal(err)
	}
	r := s.reply()
	if !strings.HasPrefix(r, want) {
		s.t.Fatalf("%q: got %q, want %q...", line, r, want)
	}
	return r
}

// send runs a transaction from alice@a.test to carol@c.test.
func (s *smtpChat) send(subject string) {
	s.t.Helper()
	s.cmd("MAIL FROM:<alice@a.test>", "250 ")
	s.cmd("RCPT TO:<carol@c.test>", "250 ")
	s.cmd("DATA", "354 ")
	s.cmd("Subject: "+subject+"\r\n\r\nhello\r\n.", "250 ")
}

// TestPostfix starts private Postfix instances and checks what the
// harness promises: XCLIENT from 127.0.0.1 only (the address it gives is
// the one logged and written in Received), relay only after login (by
// XCLIENT LOGIN with SASL on, or AUTH against the sasldb), STARTTLS and
// implicit TLS with the given certificate, message_size_limit, the log,
// and no process left after Close.
func TestPostfix(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	start := time.Now()
	p := testenv.StartPostfix(t, testenv.PostfixOptions{
		SASL:     true,
		Users:    map[string]string{"alice@a.test": "secret"},
		CertFile: cert, KeyFile: key,
		MessageSizeLimit: 4096,
	})
	t.Logf("Postfix %s started in %v", p.Version, time.Since(start))

	t.Run("xclient", func(t *testing.T) {
		s := dialSMTP(t, "127.0.0.1", p.Addr)
		ehlo := s.cmd("EHLO gw.test", "250-postfix.test")
		for _, want := range []string{"\n250-XCLIENT ", " LOGIN ", "\n250-SIZE 4096\n", "\n250-STARTTLS\n", "\n250-AUTH PLAIN LOGIN\n"} {
			if !strings.Contains(ehlo, want) {
				t.Errorf("EHLO reply lacks %q:\n%s", want, ehlo)
			}
		}
		s.cmd("XCLIENT ADDR=127.0.0.2 PORT=4444 HELO=client.test PROTO=ESMTP LOGIN=alice@a.test", "220 postfix.test")
		// The new address is not trusted for XCLIENT (Postfix checks
		// smtpd_authorized_xclient_hosts again).
		if ehlo := s.cmd("EHLO client.test", "250-postfix.test"); strings.Contains(ehlo, "XCLIENT") {
			t.Errorf("EHLO after XCLIENT still lists XCLIENT:\n%s", ehlo)
		}
		s.send("via xclient")
		m := p.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool { return bytes.Contains(m.Data, []byte("Subject: via xclient")) })
		if m.From != "alice@a.test" || len(m.To) != 1 || m.To[0] != "carol@c.test" {
			t.Errorf("envelope from %q to %q", m.From, m.To)
		}
		if want := "Received: from client.test (unknown [127.0.0.2])\r\n\t(Authenticated sender: alice@a.test)\r\n\tby postfix.test (Postfix) with ESMTPA"; !bytes.HasPrefix(m.Data, []byte(want)) {
			t.Errorf("relayed message starts\n%s\nwant %q", m.Data, want)
		}
		p.WaitLog(t, `postfix-test/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.2\], sasl_method=XCLIENT, sasl_username=alice@a\.test`)
	})

	t.Run("xclient from an untrusted address", func(t *testing.T) {
		s := dialSMTP(t, "127.0.0.3", p.Addr)
		if ehlo := s.cmd("EHLO client.test", "250-"); strings.Contains(ehlo, "XCLIENT") {
			t.Errorf("EHLO to 127.0.0.3 lists XCLIENT:\n%s", ehlo)
		}
		s.cmd("XCLIENT LOGIN=alice@a.test", "550 5.7.0")
	})

	t.Run("relay needs a login", func(t *testing.T) {
		s := dialSMTP(t, "127.0.0.3", p.Addr)
		s.cmd("EHLO client.test", "250-")
		s.cmd("MAIL FROM:<alice@a.test>", "250 ")
		s.cmd("RCPT TO:<carol@c.test>", "554 5.7.1 <carol@c.test>: Relay access denied")
	})

	t.Run("auth", func(t *testing.T) {
		s := dialSMTP(t, "127.0.0.4", p.Addr)
		s.cmd("EHLO client.test", "250-")
		s.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@a.test\x00wrong")), "535 5.7.8")
		s.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@a.test\x00secret")), "235 2.7.0")
		s.send("via auth")
		p.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool { return bytes.Contains(m.Data, []byte("Subject: via auth")) })
		p.WaitLog(t, `client=unknown\[127\.0\.0\.4\], sasl_method=PLAIN, sasl_username=alice@a\.test`)
	})

	t.Run("tls", func(t *testing.T) {
		conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		s := dialSMTP(t, "127.0.0.1", p.Addr)
		s.cmd("EHLO client.test", "250-")
		s.cmd("STARTTLS", "220 2.0.0")
		tc := tls.Client(s.c, conf)
		if err := tc.Handshake(); err != nil {
			t.Fatalf("STARTTLS handshake: %v", err)
		}
		s.c, s.r = tc, bufio.NewReader(tc)
		s.cmd("EHLO client.test", "250-")

		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.TLSAddr, conf)
		if err != nil {
			t.Fatalf("implicit TLS: %v", err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(l, "220 postfix.test") {
			t.Errorf("implicit TLS greeting %q, %v", l, err)
		}
	})

	t.Run("size limit", func(t *testing.T) {
		s := dialSMTP(t, "127.0.0.4", p.Addr)
		s.cmd("EHLO client.test", "250-")
		s.cmd("MAIL FROM:<alice@a.test> SIZE=5000", "552 5.3.4 Message size exceeds fixed limit")
	})

	t.Run("close", func(t *testing.T) {
		pid := p.Pid()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		// Zombies wait for init to reap them; nothing else may be left.
		out, err := exec.Command("ps", "-e", "-o", "pgid=,pid=,stat=,args=").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[0] == strconv.Itoa(pid) && !strings.HasPrefix(f[2], "Z") {
				t.Errorf("left in group %d after Close: %s", pid, l)
			}
		}
		if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after Close", p.Addr)
		}
	})
}
