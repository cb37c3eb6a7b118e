// Command soakload runs `pipegate mail` and `pipegate forward` under a
// mixed churn for a while and watches them for growth that should not be
// there: open descriptors, goroutines, threads and RSS sampled every few
// seconds, then, once the churn has stopped and the connections have
// drained, compared with the level before it. It also checks what the
// daemons counted (logins, failures, sessions, connections) against what
// it did, and what they logged (one line per connection, no secret, no
// panic, no ERROR). Run it with bench/soak.sh, which builds pipegate
// first, as root with Dovecot installed (dovecot-imapd, dovecot-pop3d,
// dovecot-managesieved, dovecot-submissiond):
//
//	bench/soak.sh                          # 3 minutes
//	DURATION=10m bench/soak.sh             # the long run
//	bench/soak.sh --duration 1m --sample 5s --reload 10s
//
// What it starts, all on loopback: one Dovecot serving IMAP, POP3,
// ManageSieve and submission (relaying to an in-process SMTP sink); one
// `pipegate mail` with a plain (STARTTLS) and an implicit-TLS listener per
// protocol (ManageSieve: STARTTLS only), routing soak@a.test to Dovecot's
// plain ports and soak@b.test to its TLS ones, with its metrics endpoint;
// one `pipegate forward` with four forwards in front of an in-process echo
// server: plain on the event loops, plain on the Go accept path, TLS
// termination and TLS origination, with its metrics endpoint.
//
// The churn, from client addresses in 127.0.1.0/24 to 127.0.5.0/24 (and
// fresh ones in 127.6.0.0/16 for repeated wrong passwords), never the
// daemons' own 127.0.0.1: good logins that do a little and log out
// (some pipelined in one write), wrong passwords (once, or until the
// connection is closed after max_login_failures), clients that vanish
// mid TLS handshake, mid STARTTLS, mid login, mid literal and after a
// whole login command, over-long lines, huge literals, connect-and-close
// (half of them with a reset), idle sessions before and after login held
// and then dropped; forward connections short, long and idle (past the
// idle timeout), half-closes, connect-and-close and vanished TLS
// handshakes. Client TLS is 1.3, 1.2 (the engine's goroutine fallback)
// or 1.3 resuming a session, at random. Both daemons get a SIGHUP every
// --reload (the routes file and the forward config alternate between two
// contents); Dovecot is killed and restarted half-way, the echo server at
// three quarters.
//
// After the churn: the sessions and connections must end; a burst of
// limit+1 connections from addresses the churn used must see exactly the
// per-address limit accepted (a leaked slot shows as one less); after two
// garbage collections, descriptors, goroutines and the heap in use must
// be back near the level before the churn; the daemons' counters
// (sessions, logins ok, password failures, connections, bytes, the
// duration histogram, pipes open) must match what the soak did; SIGTERM
// with sessions open must stop each daemon within its drain_timeout; the
// logs must hold one line per connection, no password, no panic and no
// ERROR.
//
// Goroutines come from each daemon's metrics endpoint (go_goroutines);
// descriptors, threads and RSS from /proc/PID. When the goroutines or
// descriptors of a daemon do not come back, it is stopped with SIGQUIT
// (its log then holds every goroutine's stack) instead of SIGTERM.
//
// The exit status is 0 when every check passed, 1 when one did not (each
// failure is printed under "FINDINGS"), 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
)

func main() {
	os.Exit(benchproc.Run("soakload", run))
}

// options are the command line.
type options struct {
	pipegate    string
	duration    time.Duration
	sample      time.Duration
	reload      time.Duration
	mailWorkers int
	idleWorkers int
	fwdWorkers  int
	pace        time.Duration
	restart     bool
	drainWait   time.Duration
	keep        bool
}

func run() error {
	var o options
	flag.StringVar(&o.pipegate, "pipegate", "", "pipegate binary (required; bench/soak.sh passes it)")
	flag.DurationVar(&o.duration, "duration", 3*time.Minute, "how long the churn runs")
	flag.DurationVar(&o.sample, "sample", 10*time.Second, "how often the daemons are sampled")
	flag.DurationVar(&o.reload, "reload", 20*time.Second, "how often both daemons get a SIGHUP (0: never)")
	flag.IntVar(&o.mailWorkers, "mail-workers", 12, "concurrent mail clients (logins, failures, vanishing clients)")
	flag.IntVar(&o.idleWorkers, "idle-workers", 6, "concurrent mail clients that hold an idle session, then drop it")
	flag.IntVar(&o.fwdWorkers, "forward-workers", 8, "concurrent forward clients")
	flag.DurationVar(&o.pace, "pace", 40*time.Millisecond, "mean pause of a worker between two operations (the machine is shared)")
	flag.BoolVar(&o.restart, "restart", true, "kill and restart Dovecot once, half-way through")
	flag.DurationVar(&o.drainWait, "drain-wait", 90*time.Second, "how long to wait after the churn for the sessions to end")
	flag.BoolVar(&o.keep, "keep", os.Getenv("SOAK_KEEP") == "1", "keep the working folder (configs, logs); SOAK_KEEP=1 too")
	flag.Parse()
	if o.pipegate == "" {
		return benchproc.Usagef("--pipegate BIN is required (bench/soak.sh passes it)")
	}
	if o.duration <= 0 || o.sample <= 0 || o.reload < 0 || o.mailWorkers < 1 || o.idleWorkers < 0 || o.fwdWorkers < 1 || o.pace < 0 {
		return benchproc.Usagef("--duration, --sample, --mail-workers and --forward-workers must be positive; --reload, --idle-workers and --pace not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := setUp(ctx, o)
	if env != nil {
		defer env.tearDown(o.keep)
	}
	if err != nil {
		return err
	}
	s := newSoak(o, env)
	findings, err := s.run(ctx)
	if err != nil {
		return err
	}
	if len(findings) > 0 {
		return fmt.Errorf("%d finding(s), see FINDINGS above", len(findings))
	}
	fmt.Println("\nsoak: every check passed")
	return nil
}
