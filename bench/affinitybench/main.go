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
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

func main() {
	os.Exit(run())
}

func run() int {
	pipegateBin := flag.String("pipegate", "", "pipegate binary (required)")
	logins := flag.Int("logins", 200, "sequential logins per line per round")
	rounds := flag.Int("rounds", 10, "rounds; each runs every line once, in a rotating order")
	users := flag.Int("users", 100000, "assignments written for the memory figure (0: skip)")
	sample := flag.Int("sample", 200, "keys sampled with MEMORY USAGE")
	workers := flag.Int("workers", 16, "concurrent writers of the memory figure's assignments")
	flag.Parse()
	if *pipegateBin == "" {
		fmt.Fprintln(os.Stderr, "affinitybench: --pipegate BIN is required (bench/affinity.sh passes it)")
		return 2
	}
	b := &bench{logins: *logins, rounds: *rounds}
	if err := b.setUp(*pipegateBin); err != nil {
		fmt.Fprintln(os.Stderr, "affinitybench:", err)
		b.tearDown()
		return 1
	}
	defer b.tearDown()
	printVersions()
	if err := b.loginRates(); err != nil {
		fmt.Fprintln(os.Stderr, "affinitybench:", err)
		return 1
	}
	if err := affinityLatency(b.redis.Addr, 1000, max(*rounds, 2)); err != nil {
		fmt.Fprintln(os.Stderr, "affinitybench: latency:", err)
		return 1
	}
	if *users > 0 {
		if err := memoryPerAssignment(b.redis.Addr, *users, *sample, *workers); err != nil {
			fmt.Fprintln(os.Stderr, "affinitybench: memory:", err)
			return 1
		}
	}
	return 0
}

func printVersions() {
	dv, _ := exec.Command("dovecot", "--version").Output()
	rv, _ := exec.Command("redis-server", "--version").Output()
	b, _ := os.ReadFile("/proc/cpuinfo")
	fmt.Printf("dovecot %s; %s; %d logical CPUs\n", strings.TrimSpace(string(dv)), strings.TrimSpace(string(rv)),
		strings.Count(string(b), "\nprocessor")+1)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}
