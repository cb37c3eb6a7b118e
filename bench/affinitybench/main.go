// Command affinitybench measures what user affinity (pools:, package
// affinity) costs: the IMAP login rate through pipegate to Dovecot when
// the route names pool:shared (an assignment read, or written, in Redis
// and the session counted there) against the same pipegate, Dovecot and
// account set with a direct backend; and the Redis memory per assignment,
// extrapolated to a million users. Run it with bench/affinity.sh (which
// builds pipegate first), as root, with dovecot-imapd and redis-server
// installed:
//
//	bench/affinity.sh                         # 10 rounds of 200 logins per line, 100000 assignments
//	bench/affinity.sh --logins 100 --rounds 20 --users 200000
//
// Lines: "direct" (route domain d.test → imap://dovecot), "pool-hit"
// (p.test → pool:shared, users that already have an assignment: the
// common case), "pool-new" (users without an assignment: it is written;
// their assignments are deleted before each of the line's runs). Every
// account logged in once before the timed rounds, so that Dovecot is as
// warm for each line. Logins are sequential (connect, LOGIN, LOGOUT)
// from one client; each round runs every line once in a rotating order;
// a line's figure is the median of its per-round rates, and the ratio the
// median of the per-round ratios to direct.
//
// Latency: the affinity library's calls around one login (Assign,
// SessionStart, SessionEnd) against the same Redis without Dovecot or
// pipegate, for users with and without an assignment: the cost the login
// rates above hide in their noise.
//
// Memory: N users get an assignment through the affinity library against
// the same Redis ("idle": assigned, no session, as kept for expire:), and
// then a session each ("live": the session count and the instance's
// index); used_memory from INFO memory before and after, per user, and
// MEMORY USAGE of sampled keys.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
)

func main() {
	os.Exit(benchproc.Run("affinitybench", run))
}

func run() error {
	var f benchproc.Flags
	f.Register(flag.CommandLine, 200)
	users := flag.Int("users", 100000, "assignments written for the memory figure (0: skip)")
	sample := flag.Int("sample", 200, "keys sampled with MEMORY USAGE")
	workers := flag.Int("workers", 16, "concurrent writers of the memory figure's assignments")
	flag.Parse()
	if err := f.Check("bench/affinity.sh"); err != nil {
		return err
	}
	b := &bench{logins: f.Logins, rounds: f.Rounds}
	defer b.tearDown()
	if err := b.setUp(context.Background(), f.Pipegate); err != nil {
		return err
	}
	printVersions()
	if err := b.loginRates(); err != nil {
		return err
	}
	if err := affinityLatency(b.redis.Addr, 1000, max(f.Rounds, 2)); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	if *users > 0 {
		if err := memoryPerAssignment(b.redis.Addr, *users, *sample, *workers); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	return nil
}

func printVersions() {
	fmt.Printf("dovecot %s; %s; %d logical CPUs\n", benchproc.Version("dovecot", "--version"), benchproc.Version("redis-server", "--version"), benchproc.LogicalCPUs())
}
