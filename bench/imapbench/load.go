package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

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
	c net.Conn
	r *bufio.Reader
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
	s := &session{c: c, r: bufio.NewReaderSize(c, 4096)}
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

// logout ends the session as a client does.
func (s *session) logout() error {
	s.c.SetDeadline(time.Now().Add(30 * time.Second))
	defer s.c.Close()
	fmt.Fprintf(s.c, "z LOGOUT\r\n")
	_, err := s.expect("z OK")
	return err
}

// loginRate runs n sequential login+logout cycles and returns logins/s.
func loginRate(t target, n int, user, pass string) (float64, error) {
	start := time.Now()
	for i := range n {
		s, err := login(t, user, pass)
		if err != nil {
			return 0, fmt.Errorf("login %d: %w", i, err)
		}
		if err := s.logout(); err != nil {
			return 0, fmt.Errorf("%s logout %d: %w", t.name, i, err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// idleMemory returns the RSS growth (KiB) of the process group pgid per
// idle logged-in session through t: it opens n sessions, measures, opens n
// more and measures again, so that lazy initialisation and garbage left by
// earlier runs (a Go heap reuses it) do not count.
func idleMemory(t target, n int, user, pass string, pgid int) (float64, error) {
	sessions := make([]*session, 0, 2*n)
	defer func() {
		for _, s := range sessions {
			s.logout()
		}
	}()
	var rss [2]int64
	for step := range rss {
		for i := range n {
			s, err := login(t, user, pass)
			if err != nil {
				return 0, fmt.Errorf("session %d: %w", step*n+i, err)
			}
			sessions = append(sessions, s)
		}
		time.Sleep(time.Second) // let the proxy settle (a bench, not a test)
		var err error
		if rss[step], err = groupRSS(pgid); err != nil {
			return 0, err
		}
	}
	return float64(rss[1]-rss[0]) / float64(n), nil
}

// groupRSS sums VmRSS (KiB) over the processes of a process group.
func groupRSS(pgid int) (int64, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb
			}
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("no process in group %d", pgid)
	}
	return total, nil
}

// groupCPU returns the CPU time (user and system, reaped children
// included) of the processes in group pgid, in clock ticks (1/100 s on
// Linux).
func groupCPU(pgid int) int64 {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var total int64
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // gone
		}
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		// state ppid pgrp session tty tpgid flags minflt cminflt majflt
		// cmajflt utime stime cutime cstime ...
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 15 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
		}
	}
	return total
}
