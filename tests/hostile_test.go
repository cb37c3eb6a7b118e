package tests

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// hostileConfig: short login timeout, ten failures per connection.
// auth_failure_delay off: 1,000 failures held 2 s each would not fit the
// 2 s login timeout; the floor has its own tests (TestIdentityUniformFailures).
const hostileConfig = "login_timeout: 2s\nmax_login_failures: 10\nauth_failure_delay: 0s\n"

// TestHostile sends what attackers send; after each, pipegate must still
// serve a normal client.
func TestHostile(t *testing.T) {
	e := newEnv(t, envOptions{allowPlaintext: true, extra: hostileConfig})
	stillServes := func(t *testing.T) {
		t.Helper()
		if n := loginAndCount(t, e.goClient("127.0.0.2", "tls"), "alice@a.test", "login"); n != messageCount["alice@a.test"] {
			t.Fatalf("after the attack: %d messages", n)
		}
	}

	t.Run("starttls with pipelined plaintext", func(t *testing.T) {
		rc := rawDial(t, "127.0.0.4", e.plainAddr)
		// CVE-2011-0411: the LOGIN sent with STARTTLS must become part of
		// the TLS handshake (and break it), never run as a command.
		rc.send("a STARTTLS\r\nb LOGIN alice@a.test alice-secret\r\nc NOOP\r\n")
		rc.expect("a OK")
		rest, _ := rc.untilClosed()
		if strings.Contains(rest, "b OK") || strings.Contains(rest, "b NO") || strings.Contains(rest, "c OK") {
			t.Fatalf("pipelined plaintext after STARTTLS was executed: %q", rest)
		}
		if strings.Contains(e.d1.Log(), "rip=127.0.0.4") {
			t.Fatalf("backend saw a login from the attacker:\n%s", e.d1.Log())
		}
		stillServes(t)
	})

	t.Run("overlong line", func(t *testing.T) {
		rc := rawDial(t, "127.0.0.4", e.plainAddr)
		rc.send("a LOGIN %s x\r\n", strings.Repeat("x", 100<<10))
		l, err := rc.line() // a reset is fine too
		t.Logf("answer to a 100 KiB line: %q %v", l, err)
		if err == nil && !strings.HasPrefix(l, "a BAD") && !strings.HasPrefix(l, "* BAD") && !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("overlong line: %q", l)
		}
		stillServes(t)
	})

	t.Run("overlong literal", func(t *testing.T) {
		rc := rawDial(t, "127.0.0.4", e.plainAddr)
		rc.send("a LOGIN {999999999}\r\n")
		l, err := rc.line()
		if err == nil && strings.HasPrefix(l, "+") {
			t.Fatalf("a literal of 999999999 bytes was invited: %q", l)
		}
		if err == nil && !strings.HasPrefix(l, "a BAD") && !strings.HasPrefix(l, "a NO") && !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("overlong literal: %q", l)
		}
		rc2 := rawDial(t, "127.0.0.4", e.plainAddr)
		rc2.send("a LOGIN {999999999+}\r\n") // non-synchronizing: no invitation to wait for
		l, err = rc2.line()
		if err == nil && !strings.HasPrefix(l, "a BAD") && !strings.HasPrefix(l, "a NO") && !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("overlong non-synchronizing literal: %q", l)
		}
		stillServes(t)
	})

	t.Run("slowloris", func(t *testing.T) {
		// Half a command, then silence: login_timeout (2s) ends it with BYE.
		rc := rawDial(t, "127.0.0.4", e.plainAddr)
		rc.send("a LOGIN alice@a.te")
		out, _ := rc.untilClosed()
		if !strings.Contains(out, "* BYE") {
			t.Fatalf("login timeout without BYE: %q", out)
		}
		stillServes(t)
	})

	t.Run("1000 failed logins", func(t *testing.T) {
		const workers, conns, perConn = 4, 25, 10 // 4*25*10 = 1000 attempts
		var wg sync.WaitGroup
		results := make([]guessResult, workers)
		for i := range workers {
			wg.Add(1)
			go guessPasswords(&wg, e, conns, perConn, &results[i])
		}
		done := make(chan struct{})
		go closeAfter(&wg, done)
		// Meanwhile another client, from another address, logs in.
		logins := 0
		for {
			select {
			case <-done:
			default:
				stillServes(t)
				logins++
				continue
			}
			break
		}
		stillServes(t)
		nos := 0
		for _, r := range results {
			if r.err != nil {
				t.Fatal(r.err)
			}
			nos += r.nos
		}
		if nos != workers*conns*perConn {
			t.Fatalf("%d NO answers, want %d", nos, workers*conns*perConn)
		}
		t.Logf("%d failed logins answered; %d good logins meanwhile", nos, logins+1)
		m := e.metrics()
		re := regexp.MustCompile(`pipegate_imap_logins_total\{[^}]*result="failed"[^}]*\} (\d+)`)
		failed := 0
		for _, sm := range re.FindAllStringSubmatch(m, -1) {
			n, _ := strconv.Atoi(sm[1])
			failed += n
		}
		if failed < nos {
			t.Errorf("metrics count %d failed logins, want at least %d:\n%s", failed, nos, m)
		}
	})
}

type guessResult struct {
	nos int
	err error
}

// guessPasswords is a password guesser from 127.0.0.5: conns connections,
// perConn wrong passwords each (the last one is answered with BYE).
func guessPasswords(wg *sync.WaitGroup, e *env, conns, perConn int, r *guessResult) {
	defer wg.Done()
	for c := range conns {
		if err := guessOnce(e, c, perConn, r); err != nil {
			r.err = err
			return
		}
	}
}

func guessOnce(e *env, c, perConn int, r *guessResult) error {
	conn, err := dialFromErr("127.0.0.5", e.plainAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	rc := newRaw(nil, conn)
	if l, err := rc.line(); err != nil || !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("guesser greeting: %q %v", l, err)
	}
	for i := range perConn {
		tag := fmt.Sprintf("g%d", i)
		fmt.Fprintf(conn, "%s LOGIN %s wrong-%d-%d\r\n", tag, guessUser, c, i)
		for {
			l, err := rc.line()
			if err != nil {
				return fmt.Errorf("guesser attempt %d: %v", i, err)
			}
			if strings.HasPrefix(l, tag+" NO") {
				r.nos++
				break
			}
			if strings.HasPrefix(l, tag+" ") {
				return fmt.Errorf("guesser attempt %d: %q", i, l)
			}
		}
	}
	return nil
}

// closeAfter closes done once wg is done.
func closeAfter(wg *sync.WaitGroup, done chan<- struct{}) {
	wg.Wait()
	close(done)
}
