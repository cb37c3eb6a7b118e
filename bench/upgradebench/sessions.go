package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// session is one logged-in client connection, IDLE unless it samples.
type session struct {
	c    net.Conn
	r    *bufio.Reader
	idle bool
	tags int
}

var clientTLS = &tls.Config{
	InsecureSkipVerify: true, // bench: self-signed certificate on loopback
	// No session cache: every session is a full handshake.
}

// openAll opens n sessions, concurrency at a time; the first samplers
// ones do not IDLE. Any failure fails the run.
func (b *bench) openAll(ctx context.Context, samplers int) ([]*session, error) {
	ss := make([]*session, b.n)
	errs := make([]error, b.n)
	forEach(b.n, b.concurrency, func(i int) {
		ss[i], errs[i] = b.open(ctx, i, i >= samplers)
	})
	if err := firstErrors(errs); err != nil {
		closeSessions(ss)
		return nil, fmt.Errorf("opening %d sessions: %w", b.n, err)
	}
	return ss, nil
}

func (b *bench) open(ctx context.Context, i int, idle bool) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, fmt.Errorf("session %d: %w", i, err)
	}
	deadline, _ := ctx.Deadline()
	raw.SetDeadline(deadline)
	c := tls.Client(raw, clientTLS)
	s := &session{c: c, r: bufio.NewReaderSize(c, 1024)}
	if err := s.login(i%b.users, idle); err != nil {
		c.Close()
		return nil, fmt.Errorf("session %d: %w", i, err)
	}
	raw.SetDeadline(time.Time{})
	return s, nil
}

func (s *session) login(account int, idle bool) error {
	if err := s.expect("* ", "greeting"); err != nil {
		return err
	}
	if err := s.command("LOGIN " + userName(account) + " " + password); err != nil {
		return err
	}
	if err := s.command("SELECT INBOX"); err != nil {
		return err
	}
	if idle {
		if _, err := fmt.Fprintf(s.c, "i IDLE\r\n"); err != nil {
			return fmt.Errorf("send IDLE: %w", err)
		}
		if err := s.expect("+ ", "IDLE"); err != nil {
			return err
		}
		s.idle = true
	}
	return nil
}

// command sends cmd with a new tag and reads up to its OK.
func (s *session) command(cmd string) error {
	s.tags++
	tag := fmt.Sprintf("t%d", s.tags)
	if _, err := fmt.Fprintf(s.c, "%s %s\r\n", tag, cmd); err != nil {
		return fmt.Errorf("send %s: %w", cmd, err)
	}
	return s.expect(tag+" OK", strings.Fields(cmd)[0])
}

// expect reads lines until one starts with want; another tagged answer,
// BYE, or 100 lines without want is an error.
func (s *session) expect(want, what string) error {
	tag, _, _ := strings.Cut(want, " ")
	for range 100 {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s: %w (after %q)", what, err, l)
		}
		if strings.HasPrefix(l, want) {
			return nil
		}
		if (tag != "*" && tag != "+" && strings.HasPrefix(l, tag+" ")) || strings.HasPrefix(l, "* BYE") {
			return fmt.Errorf("%s: %q", what, strings.TrimSpace(l))
		}
	}
	return fmt.Errorf("%s: no %q in 100 lines", what, want)
}

// noop is one round trip; an idle session leaves IDLE first (and stays
// out of it).
func (s *session) noop(timeout time.Duration) (time.Duration, error) {
	s.c.SetDeadline(time.Now().Add(timeout))
	defer s.c.SetDeadline(time.Time{})
	if s.idle {
		if _, err := fmt.Fprintf(s.c, "DONE\r\n"); err != nil {
			return 0, fmt.Errorf("send DONE: %w", err)
		}
		if err := s.expect("i OK", "DONE"); err != nil {
			return 0, err
		}
		s.idle = false
	}
	t0 := time.Now()
	err := s.command("NOOP")
	return time.Since(t0), err
}

// sample is one NOOP round trip of a sampler.
type sample struct{ start, end time.Time }

// sampler runs round trips on s until stop closes.
type sampler struct {
	samples []sample
	err     error
}

func runSampler(s *session, sp *sampler, interval, timeout time.Duration, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		t0 := time.Now()
		if _, err := s.noop(timeout); err != nil {
			sp.err = err
			return
		}
		sp.samples = append(sp.samples, sample{t0, time.Now()})
		select {
		case <-stop:
			return
		case <-time.After(interval): // pacing, not synchronisation
		}
	}
}

// checkAll does one NOOP on every session, on its first connection, and
// returns the round-trip times and the sessions that failed.
func (b *bench) checkAll(ss []*session) ([]time.Duration, int, error) {
	rtts := make([]time.Duration, len(ss))
	errs := make([]error, len(ss))
	forEach(len(ss), b.concurrency, func(i int) {
		rtts[i], errs[i] = ss[i].noop(b.timeout)
		if errs[i] != nil {
			errs[i] = fmt.Errorf("session %d: %w", i, errs[i])
		}
	})
	failed := 0
	for _, e := range errs {
		if e != nil {
			failed++
		}
	}
	return rtts, failed, firstErrors(errs)
}

func closeSessions(ss []*session) {
	for _, s := range ss {
		if s != nil {
			s.c.Close()
		}
	}
}

// forEach runs f(0..n-1) on workers goroutines.
func forEach(n, workers int, f func(int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go forEachWorker(next, f, &wg)
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func forEachWorker(next <-chan int, f func(int), wg *sync.WaitGroup) {
	defer wg.Done()
	for i := range next {
		f(i)
	}
}

// firstErrors joins up to 3 errors and says how many there were.
func firstErrors(errs []error) error {
	var first []error
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
			if len(first) < 3 {
				first = append(first, e)
			}
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d failed; first: %w", n, errors.Join(first...))
}
