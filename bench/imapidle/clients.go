package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// clients opens idle IMAP sessions through one proxy and measures it.
type clients struct {
	name        string
	addr        string
	pid         int
	n           int
	users       int
	warmup      int
	concurrency int
	settle      time.Duration
	timeout     time.Duration
	idle        bool

	tls      *tls.Config
	sessions []*session
	holders  sync.WaitGroup
	closing  atomic.Bool
	drops    atomic.Int64
	firstErr atomic.Pointer[error] // first session lost after it was idle
}

// session is one logged-in, idle client connection.
type session struct {
	c net.Conn
	r *bufio.Reader
}

func runClients(args []string) int {
	fs := flag.NewFlagSet("clients", flag.ExitOnError)
	c := &clients{}
	fs.StringVar(&c.name, "name", "proxy", "name of the target, for the table")
	fs.StringVar(&c.addr, "addr", "", "implicit-TLS IMAP address of the proxy (required)")
	fs.IntVar(&c.pid, "pid", 0, "proxy process to measure (required)")
	fs.IntVar(&c.n, "n", 9000, "idle sessions to open")
	fs.IntVar(&c.users, "users", 9000, "accounts on the backend; session i logs in as user(i mod users)@a.test")
	fs.IntVar(&c.warmup, "warmup", 50, "sessions opened before the first measurement")
	fs.IntVar(&c.concurrency, "concurrency", 200, "sessions being opened at the same time")
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "wait after opening sessions before measuring")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "per session: connect, TLS, LOGIN, SELECT and IDLE")
	fs.BoolVar(&c.idle, "idle", true, "SELECT INBOX and IDLE after LOGIN (as mail clients do); false: stay after LOGIN")
	fs.Parse(args)
	if c.addr == "" || c.pid <= 0 || c.n < 2 || c.users < 1 || c.warmup < 1 || c.warmup >= c.n/2 || c.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "imapidle clients: need -addr, -pid, -n >= 2, -users >= 1, 1 <= -warmup < n/2, -concurrency >= 1")
		return 2
	}
	c.tls = &tls.Config{
		InsecureSkipVerify: true, // bench: self-signed certificate on loopback
		// No session cache: every session is a full handshake, as many
		// devices connecting is. Curves and versions are Go's defaults.
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx)
	c.closeAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "imapidle clients %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

func (c *clients) run(ctx context.Context) error {
	start := time.Now()
	points := []int{c.warmup, c.n / 2, c.n}
	var samples []procUsage
	var openTime time.Duration
	for _, upTo := range points {
		t0 := time.Now()
		if err := c.openUpTo(ctx, upTo); err != nil {
			return err
		}
		openTime += time.Since(t0)
		fmt.Fprintf(os.Stderr, "imapidle clients %s: %d sessions open and idle (%.1fs)\n", c.name, upTo, time.Since(start).Seconds())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.settle): // let the proxy finish its work; a bench, not a test
		}
		if err := c.checkDrops(); err != nil {
			return err
		}
		u, err := measure(c.pid, upTo)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "imapidle clients %s: pid %d at %d sessions: RSS %d KiB, %d open files\n", c.name, c.pid, upTo, u.rssKiB, u.fds)
		samples = append(samples, u)
	}
	if err := c.checkDrops(); err != nil {
		return err
	}
	warm, half, full := samples[0], samples[1], samples[2]
	kibAll, fdsAll := perSession(warm, full)
	kibHalf, _ := perSession(half, full)
	rate := float64(c.n) / openTime.Seconds()
	// The row of the table bench/imapidle.sh prints; opens/s counts
	// connect, TLS, greeting, LOGIN (and SELECT, IDLE) per second.
	fmt.Printf("%-9s %8d %9.1f %9.1f %14.1f %16.1f %9.2f %8.0f\n",
		c.name, c.n, float64(warm.rssKiB)/1024, float64(full.rssKiB)/1024, kibAll, kibHalf, fdsAll, rate)
	return nil
}

// openUpTo opens sessions until upTo are open, concurrency at a time. Any
// failure fails the run: the figure is only worth something with every
// session logged in.
func (c *clients) openUpTo(ctx context.Context, upTo int) error {
	first := len(c.sessions)
	if upTo <= first {
		return nil
	}
	next := make(chan int)
	results := make(chan openResult, upTo-first) // workers never block on a caller that gave up
	workers := min(c.concurrency, upTo-first)
	for range workers {
		go openWorker(ctx, c, next, results)
	}
	go feedIndexes(ctx, next, first, upTo)
	var errs []error
	failed := 0
	for range upTo - first {
		var r openResult
		select {
		case r = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			failed++
			if len(errs) < 5 {
				errs = append(errs, r.err)
			}
			continue
		}
		c.sessions = append(c.sessions, r.s)
		c.holders.Add(1)
		go holdSession(c, r.s)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d sessions (%d..%d) failed; first: %w", failed, upTo-first, first, upTo-1, errors.Join(errs...))
	}
	return nil
}

type openResult struct {
	s   *session
	err error
}

// feedIndexes hands session numbers first..upTo-1 to the workers, then
// closes next.
func feedIndexes(ctx context.Context, next chan<- int, first, upTo int) {
	defer close(next)
	for i := first; i < upTo; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			return
		}
	}
}

// openWorker opens one session per index it receives.
func openWorker(ctx context.Context, c *clients, next <-chan int, results chan<- openResult) {
	for i := range next {
		s, err := c.open(ctx, i)
		results <- openResult{s, err}
	}
}

// open connects, handshakes, logs in as session i's account and, with
// -idle, selects INBOX and enters IDLE.
func (c *clients) open(ctx context.Context, i int) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("session %d: %w", i, err)
	}
	deadline, _ := ctx.Deadline()
	raw.SetDeadline(deadline)
	conn := tls.Client(raw, c.tls)
	s := &session{c: conn, r: bufio.NewReaderSize(conn, 1024)}
	if err := s.dialogue(i%c.users, c.idle); err != nil {
		conn.Close()
		return nil, fmt.Errorf("session %d to %s: %w", i, c.addr, err)
	}
	raw.SetDeadline(time.Time{})
	return s, nil
}

func (s *session) dialogue(account int, idle bool) error {
	if _, err := s.expect("* ", "greeting"); err != nil {
		return err
	}
	steps := []struct{ tag, cmd, want string }{
		{"a", "LOGIN " + userName(account) + " " + password, "a OK"},
	}
	if idle {
		steps = append(steps,
			struct{ tag, cmd, want string }{"b", "SELECT INBOX", "b OK"},
			struct{ tag, cmd, want string }{"c", "IDLE", "+ "})
	}
	for _, st := range steps {
		if _, err := fmt.Fprintf(s.c, "%s %s\r\n", st.tag, st.cmd); err != nil {
			return fmt.Errorf("send %s: %w", strings.Fields(st.cmd)[0], err)
		}
		verb := strings.Fields(st.cmd)[0]
		if _, err := s.expect(st.want, verb); err != nil {
			return err
		}
	}
	return nil
}

// expect reads lines until one starts with want; a tagged answer of
// another kind, or 100 lines without want, is an error.
func (s *session) expect(want, what string) (string, error) {
	tag, _, _ := strings.Cut(want, " ")
	for range 100 {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return l, fmt.Errorf("%s: %w (after %q)", what, err, l)
		}
		if strings.HasPrefix(l, want) {
			return l, nil
		}
		if tag != "*" && tag != "+" && strings.HasPrefix(l, tag+" ") {
			return l, fmt.Errorf("%s: %q", what, strings.TrimSpace(l))
		}
		if strings.HasPrefix(l, "* BYE") {
			return l, fmt.Errorf("%s: %q", what, strings.TrimSpace(l))
		}
	}
	return "", fmt.Errorf("%s: no %q in 100 lines", what, want)
}

// holdSession waits on an idle session; anything but our own close ends
// it as a drop. Untagged updates (none are expected) are read and ignored.
func holdSession(c *clients, s *session) {
	defer c.holders.Done()
	for {
		if _, err := s.r.ReadString('\n'); err != nil {
			if !c.closing.Load() {
				c.drops.Add(1)
				err = fmt.Errorf("idle session lost: %w", err)
				c.firstErr.CompareAndSwap(nil, &err)
			}
			return
		}
	}
}

func (c *clients) checkDrops() error {
	if n := c.drops.Load(); n > 0 {
		return fmt.Errorf("%d of %d idle sessions were closed; first: %w", n, len(c.sessions), *c.firstErr.Load())
	}
	return nil
}

// closeAll hangs up every session and waits for their holders.
func (c *clients) closeAll() {
	c.closing.Store(true)
	for _, s := range c.sessions {
		s.c.Close()
	}
	c.holders.Wait()
}
