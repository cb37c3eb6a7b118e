package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
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
	ClientSessionCache: nil,  // a full handshake per login, as a new client does (--resume: a cache)
	MinVersion:         tls.VersionTLS12,
}

// resumed counts, by target, the TLS logins and of them the resumed ones.
var resumed sync.Map // name → *tlsCount

type tlsCount struct{ logins, resumed atomic.Int64 }

func countTLS(name string, st tls.ConnectionState) {
	v, _ := resumed.LoadOrStore(name, &tlsCount{})
	n := v.(*tlsCount)
	n.logins.Add(1)
	if st.DidResume {
		n.resumed.Add(1)
	}
}

// resumedShare is the share of t's TLS logins so far that resumed a session.
func resumedShare(name string) float64 {
	v, ok := resumed.Load(name)
	if !ok {
		return 0
	}
	n := v.(*tlsCount)
	if l := n.logins.Load(); l > 0 {
		return float64(n.resumed.Load()) / float64(l)
	}
	return 0
}

// session is one logged-in client connection.
type session struct {
	name  string // of its target
	c     net.Conn
	r     *bufio.Reader
	times phaseTimes // of its login so far
}

// login connects, logs in and returns the open session.
func login(t target, user, pass string) (*session, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", t.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	connected := time.Now()
	if t.tls {
		c = tls.Client(c, clientTLS)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	s := &session{name: t.name, c: c, r: bufio.NewReaderSize(c, 4096)}
	s.times[phaseConnect] = connected.Sub(start)
	if _, err := s.expect("* OK"); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s greeting: %w", t.name, err)
	}
	greeted := time.Now()
	s.times[phaseGreeting] = greeted.Sub(connected)
	if tc, ok := c.(*tls.Conn); ok {
		countTLS(t.name, tc.ConnectionState())
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	l, err := s.expect("a ")
	if err != nil || !strings.HasPrefix(l, "a OK") {
		c.Close()
		return nil, fmt.Errorf("%s LOGIN: %q %v", t.name, l, err)
	}
	s.times[phaseLogin] = time.Since(greeted)
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
	start := time.Now()
	fmt.Fprintf(s.c, "z LOGOUT\r\n")
	if _, err := s.expect("z OK"); err != nil {
		return fmt.Errorf("%s LOGOUT: %w", s.name, err)
	}
	s.times[phaseLogout] = time.Since(start)
	s.times.record(s.name)
	return nil
}
