package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// Client address ranges: each kind of client its own /24, so that the
// auth penalty of the wrong passwords does not slow the good logins, and
// none is 127.0.0.1 (the daemons' own address, and benchproc's probes).
var (
	srcGood   = [3]byte{127, 0, 1}
	srcBad    = [3]byte{127, 0, 2}
	srcVanish = [3]byte{127, 0, 3}
	srcIdle   = [3]byte{127, 0, 4}
	srcFwd    = [3]byte{127, 0, 5}
)

func randSrc(rng *rand.Rand, net3 [3]byte) net.IP {
	return net.IPv4(net3[0], net3[1], net3[2], byte(1+rng.IntN(250)))
}

func pick[T any](rng *rand.Rand, items []T) T { return items[rng.IntN(len(items))] }

// weighted is a scenario and how often it is picked.
type weighted struct {
	weight int
	run    func(s *soak, rng *rand.Rand) (string, error) // returns the scenario's name
}

// mailScenarios are what a mail worker picks from.
var mailScenarios = []weighted{
	{30, (*soak).goodLogin},
	{12, (*soak).badPassword},
	{3, (*soak).badPasswordRepeat},
	{8, (*soak).vanishTLS},
	{8, (*soak).vanishStartTLS},
	{8, (*soak).vanishLogin},
	{6, (*soak).vanishLiteral},
	{6, (*soak).vanishAnswer},
	{3, (*soak).hugeLiteral},
	{6, (*soak).pipelined},
	{5, (*soak).longLine},
	{10, (*soak).connectClose},
}

// mailWorker runs mail scenarios until ctx ends.
func (s *soak) mailWorker(ctx context.Context, seed uint64) {
	s.worker(ctx, seed, mailScenarios)
}

// worker runs scenarios picked by weight, with a pause between them,
// until ctx ends.
func (s *soak) worker(ctx context.Context, seed uint64, scenarios []weighted) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	total := 0
	for _, w := range scenarios {
		total += w.weight
	}
	for ctx.Err() == nil {
		n := rng.IntN(total)
		var sc weighted
		for _, w := range scenarios {
			if n < w.weight {
				sc = w
				break
			}
			n -= w.weight
		}
		start := time.Now()
		name, err := sc.run(s, rng)
		s.tally.record(name, start, err)
		s.pause(ctx, rng)
	}
}

// pause waits about the pace (0.5 to 1.5 of it) or until ctx ends.
func (s *soak) pause(ctx context.Context, rng *rand.Rand) {
	if s.o.pace == 0 {
		return
	}
	d := s.o.pace/2 + time.Duration(rng.Int64N(int64(s.o.pace)))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func randUser(rng *rand.Rand) string { return pick(rng, []string{userA, userB}) }

// goodLogin: log in, do a little, log out.
func (s *soak) goodLogin(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	mode := pick(rng, modes(proto))
	name := "mail good " + proto + " " + mode.String()
	m, err := s.open(proto, mode, randSrc(rng, srcGood))
	if err != nil {
		return name, err
	}
	ok, err := m.login(randUser(rng), password, rng.IntN(3) == 0)
	if err == nil && !ok {
		err = errors.New("login refused")
	}
	if err != nil {
		m.close()
		return name, err
	}
	s.tally.inc(s.tally.loginOK, proto)
	if err := m.work(rng.IntN(10) == 0); err != nil {
		m.close()
		return name, err
	}
	return name, m.logout()
}

// badPassword: a wrong password, refused; then log out.
func (s *soak) badPassword(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	mode := pick(rng, modes(proto))
	name := "mail badpass " + proto
	m, err := s.open(proto, mode, randSrc(rng, srcBad))
	if err != nil {
		return name, err
	}
	ok, err := m.login(randUser(rng), badPass, rng.IntN(3) == 0)
	if err == nil && ok {
		err = errors.New("a wrong password was taken")
	}
	if err != nil {
		m.close()
		return name, err
	}
	s.tally.inc(s.tally.badRejected, proto)
	return name, m.logout()
}

// maxLoginFailures is the daemon's max_login_failures (its default):
// the connection ends after that many failed logins.
const maxLoginFailures = 3

// badPasswordRepeat: wrong passwords on one connection until the server
// ends it, which it must do after maxLoginFailures.
func (s *soak) badPasswordRepeat(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	name := "mail badpass-repeat " + proto
	// A fresh address: the penalty of earlier failures would delay these
	// logins past the login timeout.
	src := net.IPv4(127, 6, byte(rng.IntN(256)), byte(1+rng.IntN(254)))
	m, err := s.open(proto, pick(rng, modes(proto)), src)
	if err != nil {
		return name, err
	}
	defer m.close()
	for failed := range maxLoginFailures {
		ok, err := m.login(randUser(rng), badPass, false)
		switch {
		case err != nil:
			return name, fmt.Errorf("after %d failures: %w", failed, err)
		case ok:
			return name, errors.New("a wrong password was taken")
		}
		s.tally.inc(s.tally.badRejected, proto)
	}
	// The goodbye (if any), then EOF.
	m.raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, m.r)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return name, fmt.Errorf("still open 10s after %d failed logins", maxLoginFailures)
	}
	return name, nil
}

// vanishTLS: a ClientHello, whole or cut short, to an implicit-TLS
// listener, then gone (half of the time with a reset).
func (s *soak) vanishTLS(rng *rand.Rand) (string, error) {
	proto := pick(rng, []string{imapProto, pop3Proto, submissionProto})
	m, err := s.dialMail(proto, noTLS, randSrc(rng, srcVanish))
	if err != nil {
		return "mail vanish-tls", err
	}
	m.c.Write(s.hello[:1+rng.IntN(len(s.hello))]) // the server may have closed: nothing to check
	s.vanish(m, rng)
	return "mail vanish-tls", nil
}

// vanish ends a connection with a FIN or an RST.
func (s *soak) vanish(m *mconn, rng *rand.Rand) {
	if rng.IntN(2) == 0 {
		m.reset()
		return
	}
	m.close()
}

// vanishStartTLS: STARTTLS accepted, then gone with nothing or part of a
// ClientHello.
func (s *soak) vanishStartTLS(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	name := "mail vanish-starttls " + proto
	m, err := s.open(proto, noTLS, randSrc(rng, srcVanish))
	if err != nil {
		return name, err
	}
	if err := m.starttlsCommand(); err != nil {
		m.close()
		return name, err
	}
	if rng.IntN(2) == 0 {
		m.raw.Write(s.hello[:1+rng.IntN(len(s.hello))])
	}
	s.vanish(m, rng)
	return name, nil
}

// vanishLogin: gone in the middle of the login command or of its SASL
// exchange.
func (s *soak) vanishLogin(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	name := "mail vanish-login " + proto
	m, err := s.open(proto, pick(rng, modes(proto)), randSrc(rng, srcVanish))
	if err != nil {
		return name, err
	}
	defer s.vanish(m, rng)
	half := rng.IntN(2) == 0 // half a command line, or inside the SASL exchange
	switch proto {
	case imapProto:
		if half {
			_, err = io.WriteString(m.c, `a LOGIN "soak@a.test" "Soak-`)
			break
		}
		_, err = m.cmd("a AUTHENTICATE PLAIN", "+")
	case pop3Proto:
		if half {
			_, err = m.cmd("USER soak@a.test", "+OK")
			break
		}
		_, err = m.cmd("AUTH PLAIN", "+")
	case sieveProto:
		if half {
			_, err = io.WriteString(m.c, `AUTHENTICATE "PLAIN" "AGFsaWNl`)
			break
		}
		err = m.send(`AUTHENTICATE "PLAIN"`)
		if err == nil {
			var l string
			if l, err = m.line(); err == nil && !strings.HasPrefix(l, `""`) && !strings.HasPrefix(l, "{") {
				err = fmt.Errorf("sieve AUTHENTICATE: %q, want a challenge", strings.TrimSpace(l))
			}
		}
	case submissionProto:
		if _, err = m.cmd("AUTH LOGIN", "334"); err == nil && half {
			_, err = m.cmd("c29ha0BhLnRlc3Q=", "334")
		}
	}
	return name, err
}

// vanishLiteral: gone in the middle of a literal, synchronising (IMAP,
// after the continuation) or not (IMAP LITERAL+, ManageSieve).
func (s *soak) vanishLiteral(rng *rand.Rand) (string, error) {
	proto := pick(rng, []string{imapProto, sieveProto})
	name := "mail vanish-literal " + proto
	m, err := s.open(proto, pick(rng, modes(proto)), randSrc(rng, srcVanish))
	if err != nil {
		return name, err
	}
	defer s.vanish(m, rng)
	switch {
	case proto == sieveProto:
		_, err = io.WriteString(m.c, "AUTHENTICATE \"PLAIN\" {40+}\r\nAGFs")
	case rng.IntN(2) == 0:
		_, err = io.WriteString(m.c, "a LOGIN {11+}\r\nsoak@")
	default:
		if err = m.send("a LOGIN {11}"); err == nil {
			var l string
			if l, err = m.line(); err == nil && !strings.HasPrefix(l, "+") {
				err = fmt.Errorf("imap literal: %q, want a continuation", strings.TrimSpace(l))
			}
			if err == nil {
				_, err = io.WriteString(m.c, "soak@")
			}
		}
	}
	return name, err
}

// longLineBytes is the over-long line's length: far past every
// protocol's limit (8 KiB IMAP, 1 KiB POP3, ...).
const longLineBytes = 70 * 1024

// longLine: a line far too long, and what the server says; it must
// answer or close, not hang.
func (s *soak) longLine(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	name := "mail long-line " + proto
	m, err := s.open(proto, noTLS, randSrc(rng, srcVanish))
	if err != nil {
		return name, err
	}
	defer m.close()
	prefix := map[string]string{imapProto: "a LOGIN ", pop3Proto: "USER ", sieveProto: "AUTHENTICATE \"PLAIN\" \"", submissionProto: "AUTH PLAIN "}[proto]
	done := make(chan error, 1)
	go writeLong(m.c, prefix, done)
	var first string
	l, rerr := m.line()
	if rerr == nil {
		first = strings.TrimSpace(l)
		if len(first) > 70 {
			first = first[:70] + "..."
		}
	} else if !isClosed(rerr) {
		m.close()
		<-done
		return name, fmt.Errorf("after an over-long line: %w", rerr)
	} else {
		first = "(closed)"
	}
	// What follows the answer: the rest, up to the close, if any comes.
	m.raw.SetReadDeadline(time.Now().Add(3 * time.Second))
	rest, cerr := io.Copy(io.Discard, m.r)
	closed := "then closed"
	if ne, ok := errors.AsType[net.Error](cerr); ok && ne.Timeout() {
		closed = "kept open"
	}
	m.close()
	<-done
	s.tally.inc(s.tally.longLine, fmt.Sprintf("%-10s %s; %s (%d bytes more)", proto, first, closed, rest))
	return name, nil
}

// writeLong writes an over-long command line; the server may close
// meanwhile.
func writeLong(c net.Conn, prefix string, done chan<- error) {
	_, err := io.WriteString(c, prefix+strings.Repeat("A", longLineBytes)+"\r\n")
	done <- err
}

// isClosed: EOF or a reset, how a server ends a connection.
func isClosed(err error) bool {
	s := err.Error()
	return errors.Is(err, io.EOF) || strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
}

// connectClose: connect and close at once, or after the greeting; half
// with a reset.
func (s *soak) connectClose(rng *rand.Rand) (string, error) {
	l := pick(rng, mailListeners)
	mode := noTLS
	if l.TLS {
		mode = implicitTLS
	}
	name := "mail connect-close"
	m, err := s.dialMail(l.Proto, noTLS, randSrc(rng, srcVanish)) // no handshake even on TLS listeners
	if err != nil {
		return name, err
	}
	if mode == noTLS && rng.IntN(2) == 0 {
		if err := m.greeting(); err != nil {
			m.close()
			return name, err
		}
	}
	s.vanish(m, rng)
	return name, nil
}

// idleScenarios are what an idle worker picks from.
var idleScenarios = []weighted{
	{1, (*soak).idlePreLogin},
	{1, (*soak).idlePostLogin},
}

// idleWorker holds idle sessions until ctx ends.
func (s *soak) idleWorker(ctx context.Context, seed uint64) {
	s.worker(ctx, seed, idleScenarios)
}

// hold keeps m open and silent for 5 to 45 s, or until the churn ends.
func (s *soak) hold(m *mconn, rng *rand.Rand) {
	d := 5*time.Second + time.Duration(rng.Int64N(int64(40*time.Second)))
	m.raw.SetDeadline(time.Time{})
	select {
	case <-s.churnCtx.Done():
	case <-time.After(d):
	}
}

// idlePreLogin: greeted (and TLS), then silent, then gone.
func (s *soak) idlePreLogin(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	name := "idle prelogin " + proto
	m, err := s.open(proto, pick(rng, modes(proto)), randSrc(rng, srcIdle))
	if err != nil {
		return name, err
	}
	s.hold(m, rng)
	s.vanish(m, rng)
	return name, nil
}

// idlePostLogin: logged in (IMAP: in IDLE half of the time), silent, then
// gone without logging out.
func (s *soak) idlePostLogin(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	name := "idle postlogin " + proto
	m, err := s.open(proto, pick(rng, modes(proto)), randSrc(rng, srcIdle))
	if err != nil {
		return name, err
	}
	ok, err := m.login(randUser(rng), password, false)
	if err == nil && !ok {
		err = errors.New("login refused")
	}
	if err != nil {
		m.close()
		return name, err
	}
	s.tally.inc(s.tally.loginOK, proto)
	if proto == imapProto && rng.IntN(2) == 0 {
		if _, err := m.cmd("b SELECT INBOX", "b OK"); err != nil {
			m.close()
			return name, err
		}
		if err := m.send("i IDLE"); err != nil {
			m.close()
			return name, err
		}
		if l, err := m.line(); err != nil || !strings.HasPrefix(l, "+") {
			m.close()
			return name, fmt.Errorf("imap IDLE: %q, %v", strings.TrimSpace(l), err)
		}
	}
	s.hold(m, rng)
	s.vanish(m, rng)
	return name, nil
}

// loginLine is the usual login command of proto, whole.
func loginLine(proto, user, pass string) string {
	switch proto {
	case imapProto:
		return fmt.Sprintf("a LOGIN %q %q", user, pass)
	case sieveProto:
		return `AUTHENTICATE "PLAIN" "` + plainIR(user, pass) + `"`
	default:
		return "AUTH PLAIN " + plainIR(user, pass)
	}
}

// vanishAnswer: a whole login command, good or wrong, then gone before
// the answer (the backend login or the failure delay is under way).
func (s *soak) vanishAnswer(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	good := rng.IntN(2) == 0
	name := "mail vanish-answer " + proto
	src, pass, gone := srcGood, password, s.tally.goodGone
	if !good {
		src, pass, gone = srcBad, badPass, s.tally.badGone
	}
	m, err := s.open(proto, pick(rng, modes(proto)), randSrc(rng, src))
	if err != nil {
		return name, err
	}
	err = m.send(loginLine(proto, randUser(rng), pass))
	s.tally.inc(gone, proto)
	s.vanish(m, rng)
	return name, err
}

// hugeLiteral: a literal that announces far more than any limit; the
// server must refuse it (or close) at once, without waiting for the
// bytes.
func (s *soak) hugeLiteral(rng *rand.Rand) (string, error) {
	proto := pick(rng, []string{imapProto, sieveProto})
	name := "mail huge-literal " + proto
	m, err := s.open(proto, noTLS, randSrc(rng, srcVanish))
	if err != nil {
		return name, err
	}
	defer m.close()
	line := map[string]string{imapProto: "a LOGIN {4000000000}", sieveProto: `AUTHENTICATE "PLAIN" {4000000000+}`}[proto]
	if proto == imapProto && rng.IntN(2) == 0 {
		line = "a LOGIN {4000000000+}"
	}
	if err := m.send(line); err != nil {
		return name, err
	}
	m.raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := m.line()
	answer := strings.TrimSpace(l)
	if len(answer) > 70 {
		answer = answer[:70] + "..."
	}
	switch {
	case err == nil:
	case isClosed(err):
		answer = "(closed)"
	default:
		return name, fmt.Errorf("no answer to %q: %w", line, err)
	}
	s.tally.inc(s.tally.longLine, fmt.Sprintf("%-10s %s -> %s", proto, line, answer))
	return name, nil
}

// pipelined: the login and the commands after it in one write, as a
// pipelining client sends them: what follows the login must reach the
// backend and be answered, in order.
func (s *soak) pipelined(rng *rand.Rand) (string, error) {
	proto := pick(rng, mailProtos)
	name := "mail pipelined " + proto
	m, err := s.open(proto, pick(rng, modes(proto)), randSrc(rng, srcGood))
	if err != nil {
		return name, err
	}
	defer m.close()
	login := loginLine(proto, randUser(rng), password)
	var lines, wants []string
	switch proto {
	case imapProto:
		lines, wants = []string{login, "b NOOP", "z LOGOUT"}, []string{"a OK", "b OK", "z OK"}
	case pop3Proto:
		lines, wants = []string{login, "STAT", "QUIT"}, []string{"+OK", "+OK", "+OK"}
	case sieveProto:
		lines, wants = []string{login, "LOGOUT"}, []string{"OK", "OK"}
	case submissionProto:
		lines, wants = []string{login, "NOOP", "QUIT"}, []string{"235", "250", "221"}
	}
	if _, err := io.WriteString(m.c, strings.Join(lines, "\r\n")+"\r\n"); err != nil {
		return name, err
	}
	for i, want := range wants {
		l, err := m.reply(false)
		if err != nil {
			return name, fmt.Errorf("%s pipelined, answer %d: %w", proto, i+1, err)
		}
		if !strings.HasPrefix(l, want) {
			return name, fmt.Errorf("%s pipelined, answer %d: %q, want %q", proto, i+1, strings.TrimSpace(l), want)
		}
		if i == 0 {
			s.tally.inc(s.tally.loginOK, proto)
		}
	}
	return name, nil
}
