package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
)

// line is one way to log in: its accounts, used in turn.
type line struct {
	name  string
	users []string
	next  int
	reset func() error // before each timed run; may be nil
}

// loginRates runs the rounds and prints each line's median rate and its
// ratio to direct.
func (b *bench) loginRates() error {
	lines := []*line{
		{name: "direct", users: b.direct},
		{name: "pool-hit", users: b.hit},
		{name: "pool-new", users: b.fresh, reset: b.forgetFresh},
	}
	// An untimed pass: every account has logged in to Dovecot once (its
	// mailbox indexes exist), and the pool-hit users have their assignment
	// (kept for expire:, 15m by default). pool-new's assignments are
	// deleted before each of its runs: each login writes one, with Dovecot
	// as warm as for the other lines.
	for _, l := range lines {
		if _, err := loginRate(b.addr, l, b.logins); err != nil {
			return fmt.Errorf("warm-up of %s: %w", l.name, err)
		}
	}
	rates := map[string][]float64{} // per line, one per round
	for r := range b.rounds {
		for _, l := range benchproc.Rotate(lines, r) {
			if l.reset != nil {
				if err := l.reset(); err != nil {
					return fmt.Errorf("%s, round %d: %w", l.name, r+1, err)
				}
			}
			rate, err := loginRate(b.addr, l, b.logins)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", l.name, r+1, err)
			}
			rates[l.name] = append(rates[l.name], rate)
		}
	}
	fmt.Printf("\n== IMAP logins/s through pipegate, %d rounds of %d sequential logins per line ==\n", b.rounds, b.logins)
	fmt.Printf("%-10s %16s %22s\n", "line", "logins/s median", "x direct median (range)")
	for i, l := range lines {
		fmt.Printf("%-10s %16.0f", l.name, benchproc.SpreadOf(rates[l.name]).Med)
		if i > 0 { // lines[0] is direct
			s := benchproc.SpreadOf(benchproc.Ratios(rates[l.name], rates["direct"]))
			fmt.Printf(" %10.3f (%.3f-%.3f)", s.Med, s.Lo, s.Hi)
		}
		fmt.Println()
	}
	return nil
}

// forgetFresh deletes the assignments of the pool-new users (idle ones:
// their sessions have ended).
func (b *bench) forgetFresh() error {
	rdb := redis.NewClient(&redis.Options{Addr: b.redis.Addr})
	defer rdb.Close()
	keys := make([]string, len(b.fresh))
	for i, u := range b.fresh {
		keys[i] = loginPrefix + "{shared}:u:" + u
	}
	return rdb.Del(context.Background(), keys...).Err()
}

// loginRate logs in and out n times in a row and returns logins/s.
func loginRate(addr string, l *line, n int) (float64, error) {
	return benchproc.Rate(n, func(int) error {
		u := l.users[l.next%len(l.users)]
		l.next++
		if err := loginLogout(addr, u); err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		return nil
	})
}

// loginLogout is one client: connect, LOGIN, LOGOUT.
func loginLogout(addr, user string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReaderSize(c, 4096)
	if l, err := expect(r, "* "); err != nil || !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("greeting %q: %v", l, err)
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	if l, err := expect(r, "a "); err != nil || !strings.HasPrefix(l, "a OK") {
		return fmt.Errorf("LOGIN: %q %v", l, err)
	}
	fmt.Fprintf(c, "z LOGOUT\r\n")
	if l, err := expect(r, "z "); err != nil || !strings.HasPrefix(l, "z OK") {
		return fmt.Errorf("LOGOUT: %q %v", l, err)
	}
	return nil
}

func expect(r *bufio.Reader, prefix string) (string, error) {
	for range 100 {
		l, err := r.ReadString('\n')
		if err != nil {
			return l, err
		}
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, "\r\n"), nil
		}
	}
	return "", fmt.Errorf("no %q in 100 lines", prefix)
}
