package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pipegate/pipegate/bench/internal/mailproto"
)

// How a mail client secures its connection.
type tlsMode int

const (
	noTLS       tlsMode = iota
	implicitTLS         // TLS from the first byte
	startTLS            // STARTTLS (STLS) after the greeting
)

func (m tlsMode) String() string {
	return [...]string{"plain", "tls", "starttls"}[m]
}

// modes lists the ways proto can be reached: ManageSieve has no
// implicit-TLS listener.
func modes(proto string) []tlsMode {
	if proto == sieveProto {
		return []tlsMode{noTLS, startTLS}
	}
	return []tlsMode{noTLS, implicitTLS, startTLS}
}

// opTimeout bounds every exchange of the churn: a client still waiting
// after it has met a hang.
const opTimeout = 30 * time.Second

// mconn is one mail client connection.
type mconn struct {
	proto string
	raw   net.Conn // the TCP connection
	c     net.Conn // raw, or TLS over it
	r     *bufio.Reader
}

// dialMail connects from src to the listener of proto (its implicit-TLS
// one when mode says so), counts the connection and runs the TLS
// handshake of implicit TLS.
func (s *soak) dialMail(proto string, mode tlsMode, src net.IP) (*mconn, error) {
	addr := s.env.mailAddrs[mailListener{Proto: proto, TLS: mode == implicitTLS}]
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	s.tally.inc(s.tally.mailDials, proto)
	s.tally.inc(s.tally.mailClients, c.LocalAddr().String())
	c.SetDeadline(time.Now().Add(opTimeout))
	m := &mconn{proto: proto, raw: c, c: c}
	if mode == implicitTLS {
		tc := tls.Client(c, s.env.pickTLS())
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		m.c = tc
	}
	m.r = bufio.NewReaderSize(m.c, 4096)
	return m, nil
}

// open dials and reads the greeting, says EHLO on submission, and runs
// STARTTLS when mode says so.
func (s *soak) open(proto string, mode tlsMode, src net.IP) (*mconn, error) {
	m, err := s.dialMail(proto, mode, src)
	if err != nil {
		return nil, err
	}
	if err := m.greeting(); err != nil {
		m.close()
		return nil, err
	}
	if mode == startTLS {
		if err := m.starttls(s.env.pickTLS()); err != nil {
			m.close()
			return nil, err
		}
	}
	return m, nil
}

func (m *mconn) close() { m.raw.Close() }

// reset closes with an RST instead of a FIN.
func (m *mconn) reset() {
	if tc, ok := m.raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	m.raw.Close()
}

// line reads one line.
func (m *mconn) line() (string, error) {
	l, err := m.r.ReadString('\n')
	if err != nil {
		return l, fmt.Errorf("read: %w (after %q)", err, l)
	}
	return l, nil
}

// reply reads up to the line that ends a reply of m's protocol, IMAP's
// tagged line (greeting: its first line) and returns it.
func (m *mconn) reply(greeting bool) (string, error) {
	for range 200 {
		l, err := m.line()
		if err != nil {
			return "", err
		}
		if mailproto.ReplyEnds(m.proto, l, greeting) {
			return l, nil
		}
	}
	return "", errors.New("no end of reply in 200 lines")
}

// send writes line and CRLF.
func (m *mconn) send(line string) error {
	_, err := io.WriteString(m.c, line+"\r\n")
	return err
}

// cmd sends line and wants a reply that starts with want.
func (m *mconn) cmd(line, want string) (string, error) {
	if err := m.send(line); err != nil {
		return "", fmt.Errorf("%s %s: write: %w", m.proto, redact(line), err)
	}
	l, err := m.reply(false)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", m.proto, redact(line), err)
	}
	if !strings.HasPrefix(l, want) {
		return l, fmt.Errorf("%s %s: %q, want %q", m.proto, redact(line), strings.TrimSpace(l), want)
	}
	return l, nil
}

// redact keeps credentials out of the soak's own messages.
func redact(line string) string {
	for _, w := range []string{"PLAIN", "LOGIN "} {
		if i := strings.Index(line, w); i >= 0 {
			return line[:i] + w + " ..."
		}
	}
	return line
}

// greeting reads the server's first words, and on submission says EHLO.
func (m *mconn) greeting() error {
	want := map[string]string{imapProto: "* OK", pop3Proto: "+OK", sieveProto: "OK", submissionProto: "220"}[m.proto]
	l, err := m.reply(true)
	if err != nil {
		return fmt.Errorf("%s greeting: %w", m.proto, err)
	}
	if !strings.HasPrefix(l, want) {
		return fmt.Errorf("%s greeting: %q", m.proto, strings.TrimSpace(l))
	}
	if m.proto == submissionProto {
		_, err = m.cmd("EHLO soak.test", "250")
	}
	return err
}

// starttlsCommand sends the protocol's STARTTLS and reads its go-ahead.
func (m *mconn) starttlsCommand() error {
	var err error
	switch m.proto {
	case imapProto:
		_, err = m.cmd("s STARTTLS", "s OK")
	case pop3Proto:
		_, err = m.cmd("STLS", "+OK")
	case sieveProto:
		_, err = m.cmd("STARTTLS", "OK")
	case submissionProto:
		_, err = m.cmd("STARTTLS", "220")
	}
	if err == nil && m.r.Buffered() > 0 {
		err = fmt.Errorf("%s: %d bytes after the STARTTLS answer", m.proto, m.r.Buffered())
	}
	return err
}

// starttls upgrades the connection: the command, the handshake, and
// what each protocol says after it (ManageSieve's capabilities,
// submission's EHLO).
func (m *mconn) starttls(cfg *tls.Config) error {
	if err := m.starttlsCommand(); err != nil {
		return err
	}
	tc := tls.Client(m.raw, cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("%s STARTTLS handshake: %w", m.proto, err)
	}
	m.c, m.r = tc, bufio.NewReaderSize(tc, 4096)
	switch m.proto {
	case sieveProto:
		if _, err := m.reply(false); err != nil {
			return fmt.Errorf("sieve capabilities after STARTTLS: %w", err)
		}
	case submissionProto:
		if _, err := m.cmd("EHLO soak.test", "250"); err != nil {
			return err
		}
	}
	return nil
}

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// login logs in as user with pass, by the protocol's usual command (alt:
// its other one) and reports whether the server said yes; a refusal is
// not an error.
func (m *mconn) login(user, pass string, alt bool) (bool, error) {
	var line, ok, no string
	switch m.proto {
	case imapProto:
		line, ok, no = fmt.Sprintf("a LOGIN %q %q", user, pass), "a OK", "a NO"
		if alt {
			line = "a AUTHENTICATE PLAIN " + plainIR(user, pass)
		}
	case pop3Proto:
		line, ok, no = "AUTH PLAIN "+plainIR(user, pass), "+OK", "-ERR"
		if alt {
			if _, err := m.cmd("USER "+user, "+OK"); err != nil {
				return false, err
			}
			line = "PASS " + pass
		}
	case sieveProto:
		line, ok, no = `AUTHENTICATE "PLAIN" "`+plainIR(user, pass)+`"`, "OK", "NO"
	case submissionProto:
		line, ok, no = "AUTH PLAIN "+plainIR(user, pass), "235", "535"
	}
	l, err := m.cmd(line, ok)
	if err == nil {
		return true, nil
	}
	if strings.HasPrefix(l, no) {
		for _, code := range []string{"[UNAVAILABLE]", "[SYS/TEMP]", "[IN-USE]", "(TRYLATER)"} {
			if strings.Contains(l, code) {
				return false, fmt.Errorf("login: %s: %q: unavailable, not refused", m.proto, strings.TrimSpace(l))
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("login: %w", err)
}

// work does a little as a logged-in client; submit sends a message on
// submission.
func (m *mconn) work(submit bool) error {
	var err error
	switch m.proto {
	case imapProto:
		if _, err = m.cmd("b SELECT INBOX", "b OK"); err == nil {
			_, err = m.cmd("c NOOP", "c OK")
		}
	case pop3Proto:
		_, err = m.cmd("STAT", "+OK")
	case sieveProto:
		_, err = m.cmd("LISTSCRIPTS", "OK")
	case submissionProto:
		if !submit {
			_, err = m.cmd("NOOP", "250")
			break
		}
		for _, c := range [][2]string{{"MAIL FROM:<soak@a.test>", "250"}, {"RCPT TO:<someone@example.test>", "250"}, {"DATA", "354"},
			{"Subject: soak\r\n\r\nhello\r\n.", "250"}} {
			if _, err = m.cmd(c[0], c[1]); err != nil {
				break
			}
		}
	}
	return err
}

// logout ends the session as a client does and closes it.
func (m *mconn) logout() error {
	defer m.close()
	var err error
	switch m.proto {
	case imapProto:
		_, err = m.cmd("z LOGOUT", "z OK")
	case pop3Proto:
		_, err = m.cmd("QUIT", "+OK")
	case sieveProto:
		_, err = m.cmd("LOGOUT", "OK")
	case submissionProto:
		_, err = m.cmd("QUIT", "221")
	}
	return err
}
