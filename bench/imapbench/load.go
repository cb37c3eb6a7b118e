package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"
)

// user and pass are the account every client logs in as.
const user, pass = "bench@a.test", "bench-pw"

// target is one way to reach the mailbox.
type target struct {
	name string
	addr string
	tls  bool // implicit TLS from the client
}

var clientTLS = &tls.Config{
	InsecureSkipVerify: true, // bench only: self-signed certificates on loopback
	ClientSessionCache: nil,  // a full handshake per login, as a new client does
	MinVersion:         tls.VersionTLS12,
}

// session is one logged-in client connection.
type session struct {
	name string // of its target
	c    net.Conn
	r    *bufio.Reader
}

// login connects, logs in and returns the open session.
func login(t target, user, pass string) (*session, error) {
	c, err := net.DialTimeout("tcp", t.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if t.tls {
		c = tls.Client(c, clientTLS)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	s := &session{name: t.name, c: c, r: bufio.NewReaderSize(c, 4096)}
	if _, err := s.expect("* OK"); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s greeting: %w", t.name, err)
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	l, err := s.expect("a ")
	if err != nil || !strings.HasPrefix(l, "a OK") {
		c.Close()
		return nil, fmt.Errorf("%s LOGIN: %q %v", t.name, l, err)
	}
	c.SetDeadline(time.Time{})
	return s, nil
}

func (s *session) expect(prefix string) (string, error) {
	for range 100 {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return l, err
		}
		if strings.HasPrefix(l, prefix) {
			return l, nil
		}
	}
	return "", fmt.Errorf("no %q in 100 lines", prefix)
}

// Close logs out as a client does and closes the connection.
func (s *session) Close() error {
	s.c.SetDeadline(time.Now().Add(30 * time.Second))
	defer s.c.Close()
	fmt.Fprintf(s.c, "z LOGOUT\r\n")
	if _, err := s.expect("z OK"); err != nil {
		return fmt.Errorf("%s LOGOUT: %w", s.name, err)
	}
	return nil
}
