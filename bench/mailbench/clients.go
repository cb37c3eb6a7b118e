package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
	"github.com/pipegate/pipegate/bench/internal/mailproto"
)

// The protocols a target speaks.
const (
	imapProto       = mailproto.IMAP
	pop3Proto       = mailproto.POP3
	sieveProto      = mailproto.Sieve
	submissionProto = mailproto.Submission
)

// How the client secures the connection.
type tlsMode int

const (
	noTLS       tlsMode = iota
	implicitTLS         // TLS from the first byte (993, 995, 465)
	startTLS            // STARTTLS after the greeting (587, ManageSieve)
)

// user and pass are the account every client logs in as.
const user, pass = "bench@a.test", "bench-pw"

// target is one way to reach the mailbox.
type target struct {
	name  string // direct, pipegate, dovecot-proxy
	proto string
	addr  string
	tls   tlsMode
}

var clientTLS = &tls.Config{
	InsecureSkipVerify: true, // bench only: self-signed certificate on loopback
	ClientSessionCache: nil,  // a full handshake per login, as a new client does
	MinVersion:         tls.VersionTLS12,
}

// session is one logged-in client connection.
type session struct {
	t target
	c net.Conn
	r *bufio.Reader
}

// plainIR is the AUTH PLAIN initial response for user and pass.
func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// login connects to t, runs its protocol's login dialogue (the only
// round trips are the greeting, EHLO where SMTP needs it, STARTTLS when
// asked, and one AUTH PLAIN or LOGIN command) and returns the session.
func login(t target, user, pass string) (*session, error) {
	c, err := net.DialTimeout("tcp", t.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if t.tls == implicitTLS {
		c = tls.Client(c, clientTLS)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	s := &session{t: t, c: c, r: bufio.NewReaderSize(c, 4096)}
	switch t.proto {
	case imapProto:
		err = s.imapLogin(user, pass)
	case pop3Proto:
		err = s.pop3Login(user, pass)
	case sieveProto:
		err = s.sieveLogin(user, pass)
	case submissionProto:
		err = s.submissionLogin(user, pass)
	default:
		err = fmt.Errorf("unknown protocol %q", t.proto)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s %s %s: %w", t.name, t.proto, t.addr, err)
	}
	c.SetDeadline(time.Time{})
	return s, nil
}

// Close logs out as a client does and closes the connection.
func (s *session) Close() error {
	s.c.SetDeadline(time.Now().Add(30 * time.Second))
	defer s.c.Close()
	var cmd string
	var ok func(string) bool
	switch s.t.proto {
	case imapProto:
		cmd, ok = "z LOGOUT", func(l string) bool { return strings.HasPrefix(l, "z OK") }
	case pop3Proto:
		cmd, ok = "QUIT", func(l string) bool { return strings.HasPrefix(l, "+OK") }
	case sieveProto:
		cmd, ok = "LOGOUT", func(l string) bool { return strings.HasPrefix(l, "OK") }
	case submissionProto:
		cmd, ok = "QUIT", func(l string) bool { return strings.HasPrefix(l, "221") }
	}
	if _, err := fmt.Fprintf(s.c, "%s\r\n", cmd); err != nil {
		return err
	}
	l, err := s.reply(false)
	if err != nil {
		return fmt.Errorf("%s %s logout: %w", s.t.name, s.t.proto, err)
	}
	if !ok(l) {
		return fmt.Errorf("%s %s logout: %q", s.t.name, s.t.proto, l)
	}
	return nil
}

// reply reads lines up to the one that ends a reply in s's protocol and
// returns that line; greeting: the server's first words.
func (s *session) reply(greeting bool) (string, error) {
	for range 100 {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return l, err
		}
		if mailproto.ReplyEnds(s.t.proto, l, greeting) {
			return l, nil
		}
	}
	return "", fmt.Errorf("no end of reply in 100 lines")
}

// command sends line and checks that the reply starts with want; an
// empty line sends nothing and reads a greeting.
func (s *session) command(line, want string) error {
	if line != "" {
		if _, err := fmt.Fprintf(s.c, "%s\r\n", line); err != nil {
			return err
		}
	}
	l, err := s.reply(line == "")
	if err != nil {
		return fmt.Errorf("after %q: %w", redact(line), err)
	}
	if !strings.HasPrefix(l, want) {
		return fmt.Errorf("after %q: %q, want %q", redact(line), strings.TrimSpace(l), want)
	}
	return nil
}

// redact keeps credentials out of error messages.
func redact(line string) string {
	if i := strings.Index(line, "PLAIN"); i >= 0 {
		return line[:i] + "PLAIN ..."
	}
	if strings.Contains(line, "LOGIN ") {
		return "LOGIN ..."
	}
	return line
}

// handshake runs the client's TLS handshake after STARTTLS.
func (s *session) handshake() error {
	if s.r.Buffered() > 0 {
		return fmt.Errorf("%d bytes after the STARTTLS answer", s.r.Buffered())
	}
	tc := tls.Client(s.c, clientTLS)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	s.c, s.r = tc, bufio.NewReaderSize(tc, 4096)
	return nil
}

func (s *session) imapLogin(user, pass string) error {
	if err := s.command("", "* OK"); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	return s.command(fmt.Sprintf("a LOGIN %s %s", user, pass), "a OK")
}

// pop3Login: greeting, AUTH PLAIN with the initial response (RFC 5034),
// +OK.
func (s *session) pop3Login(user, pass string) error {
	if err := s.command("", "+OK"); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	return s.command("AUTH PLAIN "+plainIR(user, pass), "+OK")
}

// sieveLogin: the capability greeting, STARTTLS and the capabilities
// again when asked, AUTHENTICATE "PLAIN" with the initial response, OK.
func (s *session) sieveLogin(user, pass string) error {
	if err := s.command("", "OK"); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if s.t.tls == startTLS {
		if err := s.command("STARTTLS", "OK"); err != nil {
			return err
		}
		if err := s.handshake(); err != nil {
			return err
		}
		if err := s.command("", "OK"); err != nil {
			return fmt.Errorf("capabilities after STARTTLS: %w", err)
		}
	}
	return s.command(`AUTHENTICATE "PLAIN" "`+plainIR(user, pass)+`"`, "OK")
}

// submissionLogin: 220, EHLO, [STARTTLS, 220, handshake, EHLO], AUTH
// PLAIN with the initial response, 235.
func (s *session) submissionLogin(user, pass string) error {
	if err := s.command("", "220"); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if err := s.command("EHLO bench.test", "250"); err != nil {
		return err
	}
	if s.t.tls == startTLS {
		if err := s.command("STARTTLS", "220"); err != nil {
			return err
		}
		if err := s.handshake(); err != nil {
			return err
		}
		if err := s.command("EHLO bench.test", "250"); err != nil {
			return err
		}
	}
	return s.command("AUTH PLAIN "+plainIR(user, pass), "235")
}

// loginRate runs n sequential login+logout cycles through t and returns
// cycles/s.
func loginRate(t target, n int) (float64, error) {
	return benchproc.LoginRate(n, func() (io.Closer, error) { return login(t, user, pass) })
}
