// Command imapbench compares IMAP login rates and memory per idle session
// of pipegate with a direct Dovecot, Dovecot's own proxy mode and nginx's
// mail proxy, all started by it on loopback in the same run. Run it with
// bench/imap.sh (which builds pipegate first), as root, with dovecot-imapd
// and nginx-light + libnginx-mod-mail installed:
//
//	bench/imap.sh                      # defaults: 10 rounds of 50 logins per line, 400 idle sessions
//	bench/imap.sh --logins 100 --rounds 20
//	imapbench --pipegate bin/pipegate --key rsa2048   # one run with an RSA-2048 certificate
//	KEYS="rsa2048 both" bench/imap.sh --sessions 0    # RSA alone, then RSA and ECDSA together
//
// With --pipegate-openssl BIN (bench/imap.sh passes a build with -tags
// openssl), the TLS set-up has a line pipegate-openssl: the same pipegate
// set-up whose RSA certificate key signs through OpenSSL's libcrypto.
//
// Every server shares one self-signed certificate, with an ECDSA P-256 key
// (--key ecdsa-p256, the default) or an RSA-2048 one (--key rsa2048): the
// TLS set-up's figures depend on it (bench/imap.sh runs both). With --key
// both, every server holds an RSA-2048 and an ECDSA P-256 certificate
// (pipegate's tls.certs, Dovecot's ssl_alt_cert, nginx's second
// ssl_certificate) and picks per client: the Go clients here take ECDSA;
// a second pipegate serving the RSA certificate alone is the line
// "pipegate-rsa" of the TLS set-up, for a same-run comparison.
// With
// --x25519 clients offer X25519 and P-256: Go's default key shares make a Go
// server (pipegate) pick X25519MLKEM768, which costs both ends more than
// the X25519 that Dovecot and nginx (OpenSSL 3.0) pick.
//
// Two set-ups: "plain" (plain IMAP on both sides) and "tls" (clients speak
// implicit TLS: to the proxy, which speaks plain IMAP to Dovecot; or to
// Dovecot's own imaps port for the direct line). Logins are sequential
// (connect, [TLS], LOGIN, LOGOUT); each round runs every line once, in a
// rotating order; a line's rate is all its logins over all its time, and
// per-round ratios show the spread; a second table gives each line's
// median time per phase of a cycle (connect, greeting, login, logout), to
// show where a proxy adds to a login's latency. Memory is the RSS growth of the
// proxy's processes (all processes of its group) from N to 2N idle
// logged-in sessions, per session.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
	"github.com/pipegate/pipegate/internal/testenv"
)

func main() {
	os.Exit(benchproc.Run("imapbench", run))
}

func run() error {
	var f benchproc.Flags
	f.Register(flag.CommandLine, 50)
	f.RegisterSessions(flag.CommandLine)
	opensslBin := flag.String("pipegate-openssl", "", "a pipegate binary built with -tags openssl (RSA signed by libcrypto): the TLS set-up's line pipegate-openssl")
	keyType := flag.String("key", "ecdsa-p256", "key of the servers' certificate: ecdsa-p256, rsa2048 or both (an RSA and an ECDSA certificate)")
	x25519 := flag.Bool("x25519", false, "clients offer X25519 (and P-256, which TLS 1.2 needs with an ECDSA P-256 certificate), not X25519MLKEM768: the key exchange Dovecot and nginx with OpenSSL 3.0 pick anyway (default: Go's key shares, which a Go server such as pipegate answers with X25519MLKEM768)")
	resume := flag.Bool("resume", false, "clients resume TLS sessions (one session cache for the run, as Thunderbird and Apple Mail keep one): the lines print the share of logins that resumed; the first login to each server is a full handshake (default: a full handshake per login)")
	flag.Parse()
	if *resume {
		clientTLS.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	if *x25519 {
		clientTLS.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	if *keyType != "ecdsa-p256" && *keyType != "rsa2048" && *keyType != "both" {
		return benchproc.Usagef("--key %q: want ecdsa-p256, rsa2048 or both", *keyType)
	}
	if err := f.Check("bench/imap.sh"); err != nil {
		return err
	}
	b := &bench{logins: f.Logins, rounds: f.Rounds, sessions: f.Sessions, keyType: *keyType, kex: "Go default"}
	if *x25519 {
		b.kex = "X25519, P-256"
	}
	defer b.tearDown()
	if err := b.setUp(context.Background(), f.Pipegate, *opensslBin); err != nil {
		return err
	}
	return b.run()
}

type bench struct {
	logins, rounds, sessions int
	keyType                  string // of the shared certificate: ecdsa-p256, rsa2048 or both
	kex                      string // what clients offer, for the headings

	dir              string
	backend, dproxy  *testenv.Dovecot
	pipegate, nginx  *benchproc.Process
	pipegateRSA      *benchproc.Process // --key both: a second pipegate with the RSA certificate alone
	pgRSATLS         string
	pipegateSSL      *benchproc.Process // --pipegate-openssl: the same set-up, RSA signed by libcrypto
	pgSSLTLS         string
	auth             *authHTTP
	pgPlain, pgTLS   string
	ngxPlain, ngxTLS string
}

func (b *bench) setUp(ctx context.Context, pipegateBin, opensslBin string) error {
	dovecot, nginx := benchproc.Binary("dovecot"), benchproc.Binary("nginx")
	var err error
	if b.dir, err = benchproc.TempDir("pipegate-imapbench-"); err != nil {
		return err
	}
	primary := b.keyType
	if b.keyType == "both" {
		primary = "rsa2048"
	}
	cert, key, err := writeCert(b.dir, "server", primary)
	if err != nil {
		return err
	}
	var alt keyPair // the ECDSA certificate of --key both
	dovecotExtra := dovecotTuning
	if b.keyType == "both" {
		if alt.cert, alt.key, err = writeCert(b.dir, "server-ecdsa", "ecdsa-p256"); err != nil {
			return err
		}
		// OpenSSL picks the certificate by the client's signature
		// algorithm order (Go's lists RSA-PSS first) unless the server's
		// order wins, which lists ECDSA first.
		dovecotExtra += "ssl_alt_cert = <" + alt.cert + "\nssl_alt_key = <" + alt.key + "\nssl_prefer_server_ciphers = yes\n"
	}
	users := map[string]string{user: pass}
	b.backend, err = testenv.NewDovecot(dovecot, testenv.DovecotOptions{
		Users: users, TrustedNetworks: []string{"127.0.0.1/32"},
		CertFile: cert, KeyFile: key, Extra: dovecotExtra,
	})
	if err != nil {
		return fmt.Errorf("backend dovecot: %w", err)
	}
	_, port, _ := strings.Cut(b.backend.Addr, ":")
	b.dproxy, err = testenv.NewDovecot(dovecot, testenv.DovecotOptions{
		Users: users, CertFile: cert, KeyFile: key, Extra: dovecotExtra,
		Passdb: "passdb {\n  driver = static\n  args = proxy=y host=127.0.0.1 port=" + port + " nopassword=y\n}",
	})
	if err != nil {
		return fmt.Errorf("proxy dovecot: %w", err)
	}
	pgDir := filepath.Join(b.dir, "pipegate")
	os.Mkdir(pgDir, 0o755)
	b.pipegate, b.pgPlain, b.pgTLS, err = startPipegate(ctx, pipegateBin, pgDir, keyPair{cert, key}, alt, b.backend.Addr)
	if err != nil {
		return err
	}
	if alt.cert != "" {
		rsaDir := filepath.Join(b.dir, "pipegate-rsa")
		os.Mkdir(rsaDir, 0o755)
		if b.pipegateRSA, _, b.pgRSATLS, err = startPipegate(ctx, pipegateBin, rsaDir, keyPair{cert, key}, keyPair{}, b.backend.Addr); err != nil {
			return err
		}
	}
	if opensslBin != "" {
		sslDir := filepath.Join(b.dir, "pipegate-openssl")
		os.Mkdir(sslDir, 0o755)
		if b.pipegateSSL, _, b.pgSSLTLS, err = startPipegate(ctx, opensslBin, sslDir, keyPair{cert, key}, alt, b.backend.Addr); err != nil {
			return err
		}
	}
	if b.auth, err = startAuthHTTP(b.backend.Addr); err != nil {
		return err
	}
	ngDir := filepath.Join(b.dir, "nginx")
	os.Mkdir(ngDir, 0o755)
	b.nginx, b.ngxPlain, b.ngxTLS, err = startNginx(ctx, nginx, ngDir, keyPair{cert, key}, alt, "http://"+b.auth.addr)
	return err
}

func (b *bench) tearDown() {
	if b.nginx != nil {
		b.nginx.Stop()
	}
	if b.auth != nil {
		b.auth.close()
	}
	if b.pipegateRSA != nil {
		b.pipegateRSA.Stop()
	}
	if b.pipegateSSL != nil {
		b.pipegateSSL.Stop()
	}
	if b.pipegate != nil {
		b.pipegate.Stop()
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
	pgids := map[string]int{"pipegate": b.pipegate.Pgid(), "dovecot-proxy": b.dproxy.Pid(), "nginx-mail": b.nginx.Pgid()}
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
	if b.pipegateRSA != nil { // the same run's pipegate without the ECDSA certificate
		pgids["pipegate-rsa"] = b.pipegateRSA.Pgid()
		setups[1].targets = append(setups[1].targets, target{"pipegate-rsa", b.pgRSATLS, true})
	}
	if b.pipegateSSL != nil { // the same run's pipegate with RSA signed by libcrypto
		pgids["pipegate-openssl"] = b.pipegateSSL.Pgid()
		setups[1].targets = append(setups[1].targets, target{"pipegate-openssl", b.pgSSLTLS, true})
	}
	for _, s := range setups {
		fmt.Printf("\n== %s (certificate key %s, client key shares %s) ==\n", s.name, b.keyType, b.kex)
		if s.targets[0].tls {
			fmt.Print("certificate served to these clients:")
			for _, t := range s.targets {
				fmt.Printf(" %s %s;", t.name, servedKey(t))
			}
			fmt.Println()
		}
		// Short rounds in a rotating order spread the machine's noise over
		// every line alike; a line's rate is its logins over its time.
		secs := map[string]float64{}
		rates := map[string][]float64{} // per line, one per round
		ticks := map[string]int64{}     // the proxy's CPU time over its logins
		resetPhases()
		for r := range b.rounds {
			for _, t := range benchproc.Rotate(s.targets, r) {
				rate, cpu, err := b.measure(t, s.pgids)
				if err != nil {
					return err
				}
				ticks[t.name] += cpu
				rates[t.name] = append(rates[t.name], rate)
				secs[t.name] += float64(b.logins) / rate
			}
		}
		total := float64(b.logins * b.rounds)
		direct := total / secs["direct"]
		fmt.Printf("%-14s %10s %10s %29s %16s %8s\n", "line", "logins/s", "x direct", "per-round x (median, min-max)", "proxy CPU/login", "resumed")
		for _, t := range s.targets {
			rate := total / secs[t.name]
			fmt.Printf("%-14s %10.0f %10.2f", t.name, rate, rate/direct)
			if t.name != "direct" {
				rs := benchproc.Ratios(rates[t.name], rates["direct"])
				spread := benchproc.SpreadOf(rs)
				fmt.Printf(" %17.2f (%.2f-%.2f)", upperMedian(rs), spread.Lo, spread.Hi)
			} else {
				fmt.Printf(" %29s", "")
			}
			if _, ok := s.pgids[t.name]; ok {
				fmt.Printf(" %13.2f ms", float64(ticks[t.name])*10/total) // 100 ticks/s
			} else {
				fmt.Printf(" %16s", "")
			}
			if t.tls {
				fmt.Printf(" %7.0f%%", 100*resumedShare(t.name))
			}
			fmt.Println()
		}
		printPhases(s.targets)
		if b.sessions > 0 {
			fmt.Printf("%-14s %12s\n", "proxy", "KiB/idle session")
			for _, t := range s.targets[1:] {
				kib, err := benchproc.IdleRSS(s.pgids[t.name], b.sessions, func() (io.Closer, error) { return login(t, user, pass) })
				if err != nil {
					return fmt.Errorf("%s memory: %w", t.name, err)
				}
				fmt.Printf("%-14s %12.1f\n", t.name, kib)
			}
		}
	}
	return nil
}

// servedKey is the key type of the certificate t serves to the bench's
// clients: "ECDSA", "RSA", or the handshake's error.
func servedKey(t target) string {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", t.addr, clientTLS)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	switch c.ConnectionState().PeerCertificates[0].PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case *rsa.PublicKey:
		return "RSA"
	}
	return "other"
}

// measure runs one timed batch of logins through t and returns its rate
// and, when t is a proxy of pgids, the CPU time (clock ticks) the proxy
// spent on it.
func (b *bench) measure(t target, pgids map[string]int) (rate float64, cpu int64, err error) {
	pgid, isProxy := pgids[t.name]
	var before int64
	if isProxy {
		if before, err = benchproc.GroupCPU(pgid); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	if rate, err = benchproc.LoginRate(b.logins, func() (io.Closer, error) { return login(t, user, pass) }); err != nil {
		return 0, 0, err
	}
	if isProxy {
		after, err := benchproc.GroupCPU(pgid)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", t.name, err)
		}
		cpu = after - before
	}
	return rate, cpu, nil
}

func printVersions() {
	fmt.Printf("dovecot %s; %s; %d logical CPUs\n", benchproc.Version("dovecot", "--version"), benchproc.Version("nginx", "-v"), benchproc.LogicalCPUs())
}

// upperMedian is the median of the per-round ratios as this bench has
// always printed it: of an even count, the upper of the two middle values
// (benchproc.SpreadOf takes their mean).
func upperMedian(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// keyPair names a certificate file and its key file; empty for none.
type keyPair struct{ cert, key string }

// writeCert writes a self-signed certificate shared by every server, with
// a key of keyType (ecdsa-p256 or rsa2048), as dir/name.crt and .key.
func writeCert(dir, name, keyType string) (certFile, keyFile string, err error) {
	cert, err := selfSigned(keyType)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		return "", "", err
	}
	// nginx workers run as nobody but read the key as root at start.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
