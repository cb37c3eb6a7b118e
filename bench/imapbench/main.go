// Command imapbench compares IMAP login rates and memory per idle session
// of pipegate with a direct Dovecot, Dovecot's own proxy mode and nginx's
// mail proxy, all started by it on loopback in the same run. Run it with
// bench/imap.sh (which builds pipegate first), as root, with dovecot-imapd
// and nginx-light + libnginx-mod-mail installed:
//
//	bench/imap.sh                      # defaults: 10 rounds of 50 logins per line, 400 idle sessions
//	bench/imap.sh --logins 100 --rounds 20
//	imapbench --pipegate bin/pipegate --key rsa2048   # one run with an RSA-2048 certificate
//
// Every server shares one self-signed certificate, with an ECDSA P-256 key
// (--key ecdsa-p256, the default) or an RSA-2048 one (--key rsa2048): the
// TLS set-up's figures depend on it (bench/imap.sh runs both). With
// --x25519 clients offer X25519 and P-256: Go's default key shares make a Go
// server (pipegate) pick X25519MLKEM768, which costs both ends more than
// the X25519 that Dovecot and nginx (OpenSSL 3.0) pick.
//
// Two set-ups: "plain" (plain IMAP on both sides) and "tls" (clients speak
// implicit TLS: to the proxy, which speaks plain IMAP to Dovecot; or to
// Dovecot's own imaps port for the direct line). Logins are sequential
// (connect, [TLS], LOGIN, LOGOUT); each round runs every line once, in a
// rotating order; a line's rate is all its logins over all its time, and
// per-round ratios show the spread. Memory is the RSS growth of the
// proxy's processes (all processes of its group) from N to 2N idle
// logged-in sessions, per session.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pipegate/pipegate/internal/testenv"
)

const user, pass = "bench@a.test", "bench-pw"

func main() {
	os.Exit(run())
}

func run() int {
	pipegateBin := flag.String("pipegate", "", "pipegate binary (required)")
	logins := flag.Int("logins", 50, "sequential logins per line per round")
	rounds := flag.Int("rounds", 10, "rounds; each runs every line once, in a rotating order")
	sessions := flag.Int("sessions", 400, "idle sessions for the memory figure: RSS growth from N to 2N sessions, per session (0: skip)")
	keyType := flag.String("key", "ecdsa-p256", "key of the servers' certificate: ecdsa-p256 or rsa2048")
	x25519 := flag.Bool("x25519", false, "clients offer X25519 (and P-256, which TLS 1.2 needs with an ECDSA P-256 certificate), not X25519MLKEM768: the key exchange Dovecot and nginx with OpenSSL 3.0 pick anyway (default: Go's key shares, which a Go server such as pipegate answers with X25519MLKEM768)")
	flag.Parse()
	if *x25519 {
		clientTLS.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	if *keyType != "ecdsa-p256" && *keyType != "rsa2048" {
		fmt.Fprintf(os.Stderr, "imapbench: --key %q: want ecdsa-p256 or rsa2048\n", *keyType)
		return 2
	}
	if *pipegateBin == "" {
		fmt.Fprintln(os.Stderr, "imapbench: --pipegate BIN is required (bench/imap.sh passes it)")
		return 2
	}
	b := &bench{logins: *logins, rounds: *rounds, sessions: *sessions, keyType: *keyType, kex: "Go default"}
	if *x25519 {
		b.kex = "X25519, P-256"
	}
	if err := b.setUp(*pipegateBin); err != nil {
		fmt.Fprintln(os.Stderr, "imapbench:", err)
		b.tearDown()
		return 1
	}
	defer b.tearDown()
	if err := b.run(); err != nil {
		fmt.Fprintln(os.Stderr, "imapbench:", err)
		return 1
	}
	return 0
}

type bench struct {
	logins, rounds, sessions int
	keyType                  string // of the shared certificate: ecdsa-p256 or rsa2048
	kex                      string // what clients offer, for the headings

	dir              string
	backend, dproxy  *testenv.Dovecot
	pipegate, nginx  *process
	auth             *authHTTP
	pgPlain, pgTLS   string
	ngxPlain, ngxTLS string
}

func (b *bench) setUp(pipegateBin string) error {
	dovecot, err := exec.LookPath("dovecot")
	if err != nil {
		dovecot = "/usr/sbin/dovecot"
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	if b.dir, err = os.MkdirTemp("", "pipegate-imapbench-"); err != nil {
		return err
	}
	os.Chmod(b.dir, 0o755)
	cert, key, err := writeCert(b.dir, b.keyType)
	if err != nil {
		return err
	}
	users := map[string]string{user: pass}
	b.backend, err = testenv.NewDovecot(dovecot, testenv.DovecotOptions{
		Users: users, TrustedNetworks: []string{"127.0.0.1/32"},
		CertFile: cert, KeyFile: key, Extra: dovecotTuning,
	})
	if err != nil {
		return fmt.Errorf("backend dovecot: %w", err)
	}
	_, port, _ := strings.Cut(b.backend.Addr, ":")
	b.dproxy, err = testenv.NewDovecot(dovecot, testenv.DovecotOptions{
		Users: users, CertFile: cert, KeyFile: key, Extra: dovecotTuning,
		Passdb: "passdb {\n  driver = static\n  args = proxy=y host=127.0.0.1 port=" + port + " nopassword=y\n}",
	})
	if err != nil {
		return fmt.Errorf("proxy dovecot: %w", err)
	}
	pgDir := filepath.Join(b.dir, "pipegate")
	os.Mkdir(pgDir, 0o755)
	b.pipegate, b.pgPlain, b.pgTLS, err = startPipegate(pipegateBin, pgDir, cert, key, b.backend.Addr)
	if err != nil {
		return err
	}
	if b.auth, err = startAuthHTTP(b.backend.Addr); err != nil {
		return err
	}
	ngDir := filepath.Join(b.dir, "nginx")
	os.Mkdir(ngDir, 0o755)
	b.nginx, b.ngxPlain, b.ngxTLS, err = startNginx(nginx, ngDir, cert, key, "http://"+b.auth.addr)
	return err
}

func (b *bench) tearDown() {
	if b.nginx != nil {
		b.nginx.stop()
	}
	if b.auth != nil {
		b.auth.close()
	}
	if b.pipegate != nil {
		b.pipegate.stop()
	}
	for _, d := range []*testenv.Dovecot{b.dproxy, b.backend} {
		if d != nil {
			d.Close()
			os.RemoveAll(d.Dir)
		}
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

type setup struct {
	name    string
	targets []target // targets[0] is the direct line
	pgids   map[string]int
}

func (b *bench) run() error {
	printVersions()
	pgids := map[string]int{"pipegate": b.pipegate.pgid(), "dovecot-proxy": b.dproxy.Pid(), "nginx-mail": b.nginx.pgid()}
	setups := []setup{
		{"plain both sides", []target{
			{"direct", b.backend.Addr, false},
			{"pipegate", b.pgPlain, false},
			{"dovecot-proxy", b.dproxy.Addr, false},
			{"nginx-mail", b.ngxPlain, false},
		}, pgids},
		{"client TLS (993), plain to Dovecot; direct = TLS to Dovecot", []target{
			{"direct", b.backend.TLSAddr, true},
			{"pipegate", b.pgTLS, true},
			{"dovecot-proxy", b.dproxy.TLSAddr, true},
			{"nginx-mail", b.ngxTLS, true},
		}, pgids},
	}
	for _, s := range setups {
		fmt.Printf("\n== %s (certificate key %s, client key shares %s) ==\n", s.name, b.keyType, b.kex)
		// Short rounds in a rotating order spread the machine's noise over
		// every line alike; a line's rate is its logins over its time.
		secs := map[string]float64{}
		ratios := map[string][]float64{}
		for r := range b.rounds {
			round := map[string]float64{}
			for i := range s.targets {
				t := s.targets[(i+r)%len(s.targets)]
				rate, err := loginRate(t, b.logins, user, pass)
				if err != nil {
					return err
				}
				round[t.name] = rate
				secs[t.name] += float64(b.logins) / rate
			}
			for _, t := range s.targets[1:] {
				ratios[t.name] = append(ratios[t.name], round[t.name]/round["direct"])
			}
		}
		total := float64(b.logins * b.rounds)
		direct := total / secs["direct"]
		fmt.Printf("%-14s %10s %10s %26s\n", "line", "logins/s", "x direct", "per-round x (median, min-max)")
		for _, t := range s.targets {
			rate := total / secs[t.name]
			fmt.Printf("%-14s %10.0f %10.2f", t.name, rate, rate/direct)
			if t.name != "direct" {
				rs := ratios[t.name]
				fmt.Printf(" %14.2f (%.2f-%.2f)", median(rs), minOf(rs), maxOf(rs))
			}
			fmt.Println()
		}
		if b.sessions > 0 {
			fmt.Printf("%-14s %12s\n", "proxy", "KiB/idle session")
			for _, t := range s.targets[1:] {
				kib, err := idleMemory(t, b.sessions, user, pass, s.pgids[t.name])
				if err != nil {
					return fmt.Errorf("%s memory: %w", t.name, err)
				}
				fmt.Printf("%-14s %12.1f\n", t.name, kib)
			}
		}
	}
	return nil
}

func printVersions() {
	dv, _ := exec.Command("dovecot", "--version").Output()
	nv, _ := exec.Command("nginx", "-v").CombinedOutput()
	fmt.Printf("dovecot %s; %s; %d logical CPUs\n", strings.TrimSpace(string(dv)), strings.TrimSpace(string(nv)), numCPU())
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + 1
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// writeCert writes a self-signed certificate shared by every server, with
// a key of keyType: ecdsa-p256 or rsa2048.
func writeCert(dir, keyType string) (certFile, keyFile string, err error) {
	cert, err := selfSigned(keyType)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		return "", "", err
	}
	// nginx workers run as nobody but read the key as root at start.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
