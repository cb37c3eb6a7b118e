// Command upgradebench measures a binary upgrade (SIGUSR2) of `pipegate
// mail` that carries N idle IMAP sessions (implicit TLS on the client
// side, on the event loops; plain IMAP to the backend) from the old
// process to the new one. bench/upgrade.sh builds everything, starts the
// backend (bench/imapidle's go-imap in-memory server) and runs it:
//
//	bench/upgrade.sh                 # N=9000 sessions, ROUNDS=1
//	N=2000 ROUNDS=3 bench/upgrade.sh # quick, medians over 3 rounds
//
// Each round:
//
//  1. starts pipegate mail (P1), reads its RSS with no session, opens N
//     sessions (LOGIN, SELECT INBOX; all but the samplers then IDLE);
//  2. lets -samplers sessions do NOOP round trips (one every -interval
//     each) for -quiet (the baseline), sends SIGUSR2 to P1 and goes on
//     until -tail after the new process (P2) logged "sessions taken over";
//     the time from SIGUSR2 to that line (its log time) is the hand-over
//     time, and the round trips in flight in that window are the stall;
//  3. once P1 has exited, reads P2's RSS: its growth over P1's empty RSS,
//     per session, is the memory of a handed-over session;
//  4. checks every session (DONE then NOOP, or NOOP) on its first
//     connection: none was closed, none reconnected;
//  5. closes them, stops P2, starts a fresh P3 and opens N sessions the
//     same way: its growth per session is the memory of a session that
//     started there.
//
// The table gives each figure per round, and the median over rounds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Accounts on the backend (bench/imapidle backend): userI@a.test with
// this password.
const password = "bench-pw"

func userName(i int) string { return fmt.Sprintf("user%d@a.test", i) }

// bench is one run's settings.
type bench struct {
	pipegate    string // binary
	config      string
	dir         string // logs, pid files, upgrade socket dir
	addr        string // implicit-TLS IMAP address in the config
	n           int
	users       int
	concurrency int
	samplers    int
	interval    time.Duration
	quiet       time.Duration
	tail        time.Duration
	settle      time.Duration
	timeout     time.Duration
	rounds      int
}

func main() {
	b := &bench{}
	flag.StringVar(&b.pipegate, "pipegate", "", "pipegate binary (required)")
	flag.StringVar(&b.config, "config", "", "pipegate mail config whose listener is -addr, log format json, level info (required)")
	flag.StringVar(&b.dir, "dir", "", "folder for logs, pid files and the upgrade socket dir (required)")
	flag.StringVar(&b.addr, "addr", "", "the config's implicit-TLS IMAP listener (required)")
	flag.IntVar(&b.n, "n", 9000, "idle sessions")
	flag.IntVar(&b.users, "users", 9000, "accounts on the backend; session i logs in as user(i mod users)")
	flag.IntVar(&b.concurrency, "concurrency", 200, "sessions being opened (or checked) at once")
	flag.IntVar(&b.samplers, "samplers", 200, "sessions doing NOOP round trips through the upgrade")
	flag.DurationVar(&b.interval, "interval", 20*time.Millisecond, "pause between a sampler's round trips")
	flag.DurationVar(&b.quiet, "quiet", 3*time.Second, "sampling before SIGUSR2: the baseline")
	flag.DurationVar(&b.tail, "tail", time.Second, "sampling after the sessions were taken over")
	flag.DurationVar(&b.settle, "settle", 3*time.Second, "wait before reading a process's memory")
	flag.DurationVar(&b.timeout, "timeout", 120*time.Second, "bound on each wait (start, upgrade, exit)")
	flag.IntVar(&b.rounds, "rounds", 1, "rounds; the table gives medians")
	flag.Parse()
	if b.pipegate == "" || b.config == "" || b.dir == "" || b.addr == "" || b.n < 1 || b.users < 1 ||
		b.concurrency < 1 || b.samplers < 1 || b.samplers > b.n || b.rounds < 1 {
		fmt.Fprintln(os.Stderr, "upgradebench: need -pipegate, -config, -dir, -addr, -n >= 1, 1 <= -samplers <= n, -rounds >= 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var results []roundResult
	for r := 1; r <= b.rounds; r++ {
		res, err := b.round(ctx, r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "upgradebench: round %d: %v\n", r, err)
			os.Exit(1)
		}
		results = append(results, res)
	}
	printTable(os.Stdout, b, results)
}
