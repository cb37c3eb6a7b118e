// Command mailbench compares POP3 and submission login rates of
// `pipegate mail` with a direct Dovecot and Dovecot's own proxy mode, and
// measures pipegate's memory per idle logged-in session for IMAP, POP3,
// ManageSieve and submission; every server is started by it on loopback
// in the same run. Run it with bench/mail.sh (which builds pipegate
// first), as root, with dovecot-imapd, dovecot-pop3d,
// dovecot-submissiond and dovecot-managesieved installed:
//
//	bench/mail.sh                               # 10 rounds of 50 logins per line, 400 idle sessions, 3 memory rounds
//	bench/mail.sh --logins 30 --rounds 5 --sessions 200 --mem-rounds 3
//
// Login rates, five set-ups of three lines each (direct, pipegate,
// dovecot-proxy): POP3 plain, POP3 with implicit TLS from the client
// (995), submission plain, submission with implicit TLS (465) and with
// STARTTLS (587). The proxies speak plain to the backend Dovecot; the
// direct line with TLS is Dovecot's own pop3s/submissions port (or its
// STARTTLS). A login is sequential: connect, [TLS], greeting, [EHLO,
// STARTTLS, EHLO], AUTH PLAIN with the initial response, +OK or 235, then
// QUIT. Each round runs every line of every set-up once, in an order
// rotating within a set-up, so the machine's noise falls on all lines
// alike; the table gives medians over rounds with min-max, and the ratios
// are per-round ratios (same round, adjacent in time).
//
// Memory: for each protocol, a fresh pipegate (a Go heap reuses what an
// earlier protocol's sessions freed, which would hide the growth) gets N
// idle logged-in sessions, then N more; the RSS growth from N to 2N per
// session is the figure, plain and with client TLS (implicit for IMAP,
// POP3 and submission, STARTTLS for ManageSieve), repeated over memory
// rounds in a rotating protocol order.
//
// All clients connect from 127.0.0.1, so pipegate's per-address pre-login
// limit is off in its config, and Dovecot's per-user-and-address session
// limit is raised. Every login succeeds: no auth penalty comes into play.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
	"github.com/pipegate/pipegate/internal/testenv"
)

func main() {
	os.Exit(benchproc.Run("mailbench", run))
}

func run() error {
	var f benchproc.Flags
	f.Register(flag.CommandLine, 50)
	f.RegisterSessions(flag.CommandLine)
	memRounds := flag.Int("mem-rounds", 3, "memory rounds; each starts a fresh pipegate per protocol and TLS mode")
	flag.Parse()
	if err := f.Check("bench/mail.sh"); err != nil {
		return err
	}
	if f.Logins < 1 || f.Rounds < 1 || f.Sessions < 0 || *memRounds < 1 {
		return benchproc.Usagef("--logins, --rounds and --mem-rounds must be positive, --sessions not negative")
	}
	b := &bench{pipegateBin: f.Pipegate, logins: f.Logins, rounds: f.Rounds, sessions: f.Sessions, memRounds: *memRounds}
	defer b.tearDown()
	ctx := context.Background()
	if err := b.setUp(ctx); err != nil {
		return err
	}
	printVersions()
	if err := b.rates(); err != nil {
		return err
	}
	if b.sessions > 0 {
		return b.memory(ctx)
	}
	return nil
}

type bench struct {
	pipegateBin                         string
	logins, rounds, sessions, memRounds int

	dir, cert, key  string
	backend, dproxy *testenv.Dovecot
	pg              *pipegate
}

func (b *bench) setUp(ctx context.Context) error {
	dovecot := benchproc.Binary("dovecot")
	var err error
	if b.dir, err = benchproc.TempDir("pipegate-mailbench-"); err != nil { // Dovecot's auth process reads the proxy passdb here
		return err
	}
	if b.cert, b.key, err = writeCert(b.dir); err != nil {
		return err
	}
	users := map[string]string{user: pass}
	all := []string{testenv.IMAP, testenv.POP3, testenv.Sieve, testenv.Submission}
	b.backend, err = testenv.NewDovecot(dovecot, testenv.DovecotOptions{
		Users: users, TrustedNetworks: []string{"127.0.0.1/32"}, // XCLIENT from both proxies
		CertFile: b.cert, KeyFile: b.key, Protocols: all, Extra: dovecotTuning(all...),
	})
	if err != nil {
		return fmt.Errorf("backend dovecot: %w", err)
	}
	_, pop3Port, _ := net.SplitHostPort(b.backend.POP3Addr)
	_, subPort, _ := net.SplitHostPort(b.backend.SubmissionAddr)
	passdb, err := proxyPassdb(b.dir, user, pass, map[string]string{"pop3": pop3Port, "submission": subPort})
	if err != nil {
		return err
	}
	proxied := []string{testenv.POP3, testenv.Submission}
	b.dproxy, err = testenv.NewDovecot(dovecot, testenv.DovecotOptions{
		Users: users, CertFile: b.cert, KeyFile: b.key, Protocols: proxied,
		Passdb: passdb, Extra: dovecotTuning(proxied...),
	})
	if err != nil {
		return fmt.Errorf("proxy dovecot: %w", err)
	}
	b.pg, err = startPipegate(ctx, b.pipegateBin, filepath.Join(b.dir, "pipegate"), b.cert, b.key, b.backend)
	return err
}

// tearDown stops every server and removes their folders, unless
// MAILBENCH_KEEP=1 (configs and logs kept for a look).
func (b *bench) tearDown() {
	keep := os.Getenv("MAILBENCH_KEEP") == "1"
	if b.pg != nil {
		b.pg.Stop()
	}
	for _, d := range []*testenv.Dovecot{b.dproxy, b.backend} {
		if d != nil {
			d.Close()
			if keep {
				fmt.Fprintln(os.Stderr, "mailbench: kept", d.Dir)
			} else {
				os.RemoveAll(d.Dir)
			}
		}
	}
	if b.dir != "" {
		if keep {
			fmt.Fprintln(os.Stderr, "mailbench: kept", b.dir)
		} else {
			os.RemoveAll(b.dir)
		}
	}
}

// setup is one comparison: the same protocol and client TLS on three
// lines, targets[0] the direct one.
type setup struct {
	name    string
	targets []target
}

func (b *bench) setups() []setup {
	be, dp, pg := b.backend, b.dproxy, b.pg
	line := func(name, proto, addr string, mode tlsMode) target {
		return target{name: name, proto: proto, addr: addr, tls: mode}
	}
	return []setup{
		{"POP3, plain both sides", []target{
			line("direct", pop3Proto, be.POP3Addr, noTLS),
			pg.target(pop3Proto, noTLS),
			line("dovecot-proxy", pop3Proto, dp.POP3Addr, noTLS),
		}},
		{"POP3, client TLS (995), plain to Dovecot; direct = Dovecot's pop3s", []target{
			line("direct", pop3Proto, be.POP3TLSAddr, implicitTLS),
			pg.target(pop3Proto, implicitTLS),
			line("dovecot-proxy", pop3Proto, dp.POP3TLSAddr, implicitTLS),
		}},
		{"submission, plain both sides", []target{
			line("direct", submissionProto, be.SubmissionAddr, noTLS),
			pg.target(submissionProto, noTLS),
			line("dovecot-proxy", submissionProto, dp.SubmissionAddr, noTLS),
		}},
		{"submission, client TLS (465), plain to Dovecot; direct = Dovecot's submissions", []target{
			line("direct", submissionProto, be.SubmissionTLSAddr, implicitTLS),
			pg.target(submissionProto, implicitTLS),
			line("dovecot-proxy", submissionProto, dp.SubmissionTLSAddr, implicitTLS),
		}},
		{"submission, client STARTTLS (587), plain to Dovecot; direct = Dovecot's STARTTLS", []target{
			line("direct", submissionProto, be.SubmissionAddr, startTLS),
			pg.target(submissionProto, startTLS),
			line("dovecot-proxy", submissionProto, dp.SubmissionAddr, startTLS),
		}},
	}
}

// rates measures and prints the login rates of every set-up.
func (b *bench) rates() error {
	setups := b.setups()
	// Warm-up: every login process started, every code path run once.
	for _, s := range setups {
		for _, t := range s.targets {
			if _, err := loginRate(t, 3); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	rates := make([]map[string][]float64, len(setups)) // per set-up, per line: one rate per round
	for i := range rates {
		rates[i] = map[string][]float64{}
	}
	for r := range b.rounds {
		for si, s := range setups {
			for _, t := range benchproc.Rotate(s.targets, r) {
				rate, err := loginRate(t, b.logins)
				if err != nil {
					return err
				}
				rates[si][t.name] = append(rates[si][t.name], rate)
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, b.rounds)
	}
	fmt.Printf("\nLogins/s (login+QUIT cycles, sequential), %d rounds of %d per line; median (min-max) over rounds\n", b.rounds, b.logins)
	for si, s := range setups {
		fmt.Printf("\n== %s ==\n", s.name)
		for _, t := range s.targets {
			fmt.Printf("  %-28s %s\n", t.name, benchproc.SpreadOf(rates[si][t.name]).Format(0))
		}
		for _, q := range [][2]string{{"pipegate", "direct"}, {"pipegate", "dovecot-proxy"}, {"dovecot-proxy", "direct"}} {
			fmt.Printf("  %-28s %s\n", q[0]+" / "+q[1], benchproc.SpreadOf(benchproc.Ratios(rates[si][q[0]], rates[si][q[1]])).Format(2))
		}
	}
	return nil
}

// minRatioKiB is the smallest IMAP figure a ratio is given against: an
// idle plain session costs pipegate well under 1 KiB of RSS, inside the
// garbage collector's noise at a few hundred sessions.
const minRatioKiB = 1.0

// memory measures and prints pipegate's RSS per idle session for every
// protocol, plain and with client TLS.
func (b *bench) memory(ctx context.Context) error {
	protos := []string{imapProto, pop3Proto, sieveProto, submissionProto}
	modes := []struct {
		name string
		mode func(proto string) tlsMode
	}{
		{"plain", func(string) tlsMode { return noTLS }},
		{"TLS", func(p string) tlsMode {
			if p == sieveProto {
				return startTLS // Dovecot and clients have no implicit-TLS ManageSieve
			}
			return implicitTLS
		}},
	}
	kib := map[string][]float64{} // by mode+proto
	for r := range b.memRounds {
		for _, m := range modes {
			for i := range protos {
				p := protos[(i+r)%len(protos)]
				v, err := b.idleSessionKiB(ctx, p, m.mode(p), fmt.Sprintf("mem-%d-%s-%s", r, m.name, p))
				if err != nil {
					return err
				}
				kib[m.name+p] = append(kib[m.name+p], v)
			}
		}
		fmt.Fprintf(os.Stderr, "memory round %d/%d done\n", r+1, b.memRounds)
	}
	fmt.Printf("\npipegate RSS per idle logged-in session (KiB; growth from %d to %d sessions, a fresh process each), median (min-max) over %d rounds\n",
		b.sessions, 2*b.sessions, b.memRounds)
	fmt.Printf("  %-12s", "protocol")
	for _, m := range modes {
		fmt.Printf(" %24s %8s", m.name+" KiB/session", "x IMAP")
	}
	fmt.Println()
	for _, p := range protos {
		fmt.Printf("  %-12s", p)
		for _, m := range modes {
			s, ref := benchproc.SpreadOf(kib[m.name+p]), benchproc.SpreadOf(kib[m.name+imapProto]).Med
			if ref < minRatioKiB {
				fmt.Printf(" %24s %8s", s.Format(1), "n/a")
				continue
			}
			fmt.Printf(" %24s %8.2f", s.Format(1), s.Med/ref)
		}
		fmt.Println()
	}
	fmt.Println("  (TLS: implicit for imap, pop3, submission; STARTTLS for sieve)")
	fmt.Printf("  (x IMAP is n/a where IMAP's figure is under %.0f KiB: below what RSS growth over N sessions resolves)\n", minRatioKiB)
	return nil
}

// idleSessionKiB starts a fresh pipegate in front of the backend and
// returns its RSS growth per idle session of proto.
func (b *bench) idleSessionKiB(ctx context.Context, proto string, mode tlsMode, name string) (float64, error) {
	dir := filepath.Join(b.dir, name)
	pg, err := startPipegate(ctx, b.pipegateBin, dir, b.cert, b.key, b.backend)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	defer pg.Stop()
	t := pg.target(proto, mode)
	// The process is stopped next: no need for a clean logout.
	v, err := benchproc.IdleRSS(pg.Pgid(), b.sessions, func() (io.Closer, error) {
		s, err := login(t, user, pass)
		if err != nil {
			return nil, err
		}
		return s.c, nil
	})
	if err != nil {
		return 0, fmt.Errorf("%s memory: %w", name, err)
	}
	return v, nil
}

func printVersions() {
	fmt.Printf("dovecot %s; %s; %d logical CPUs\n", benchproc.Version("dovecot", "--version"), benchproc.Version("go", "version"), benchproc.LogicalCPUs())
}
