// Command handshake measures TLS handshakes per second through pipegate's
// implicit-TLS IMAP port: full handshakes against resumed ones (session
// tickets encrypted with the keys of tls.ticket_keys, the file several
// instances share). Run it with bench/handshake.sh, which builds pipegate:
//
//	bench/handshake.sh                          # 3 rounds of 1000 handshakes per line, 2 workers
//	bench/handshake.sh --n 2000 --rounds 5 --workers 1
//
// A handshake is: connect, TLS handshake (the client verifies the
// certificate, as mail clients do), read the IMAP greeting (which also
// takes the TLS 1.3 session tickets), close. Lines: TLS 1.2; TLS 1.3 with
// Go's default key shares (X25519MLKEM768 first); TLS 1.3 with X25519
// only; each with an ECDSA P-256 and an RSA 2048 certificate (one pipegate
// per certificate). Each round runs every line once, in a rotating order;
// the figures are medians over rounds. "server µs/hs" is pipegate's CPU
// time (user+system, from /proc) per handshake: the client runs on the
// same cores, so the rate is a floor and the CPU time the better measure
// of what a gateway saves.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pipegate/pipegate/internal/freeport"
	"github.com/pipegate/pipegate/internal/procfs"
)

func main() {
	os.Exit(run())
}

func run() int {
	bin := flag.String("pipegate", "", "pipegate binary (required; bench/handshake.sh passes it)")
	osslBin := flag.String("pipegate-openssl", "", "a pipegate built with -tags openssl: its RSA lines (rsa-ossl) sign through libcrypto")
	n := flag.Int("n", 1000, "handshakes per line per round")
	rounds := flag.Int("rounds", 3, "rounds")
	workers := flag.Int("workers", 2, "concurrent clients")
	flag.Parse()
	if *bin == "" || *n < 1 || *rounds < 1 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "handshake: --pipegate BIN is required; --n, --rounds and --workers must be positive")
		return 2
	}
	dir, err := os.MkdirTemp("", "pipegate-handshake-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, key := range []string{"ecdsa", "rsa"} {
		s, err := startServer(*bin, filepath.Join(dir, key), key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "handshake:", err)
			return 1
		}
		servers = append(servers, s)
	}
	if *osslBin != "" {
		s, err := startServer(*osslBin, filepath.Join(dir, "rsa-ossl"), "rsa")
		if err != nil {
			fmt.Fprintln(os.Stderr, "handshake:", err)
			return 1
		}
		s.label = "rsa-ossl"
		servers = append(servers, s)
	}
	if err := bench(servers, *n, *rounds, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		return 1
	}
	return 0
}

// line is one measured combination.
type line struct {
	srv     *server
	name    string
	version uint16
	curves  []tls.CurveID // nil: Go's default
	resume  bool
}

func (l line) String() string {
	mode := "full"
	if l.resume {
		mode = "resumed"
	}
	label := l.srv.key
	if l.srv.label != "" {
		label = l.srv.label
	}
	return fmt.Sprintf("%-8s %-22s %-7s", label, l.name, mode)
}

// result is one measurement of a line.
type result struct {
	rate      float64 // handshakes per second
	serverCPU float64 // pipegate's CPU µs per handshake
	notResume int     // resumed lines: handshakes that were full
}

func bench(servers []*server, n, rounds, workers int) error {
	fmt.Printf("go %s, GOMAXPROCS %d, %d CPUs; %d handshakes per line and round, %d workers, %d rounds\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), n, workers, rounds)
	var lines []line
	for _, s := range servers {
		for _, v := range []struct {
			name    string
			version uint16
			curves  []tls.CurveID
		}{
			{"TLS1.2", tls.VersionTLS12, nil},
			{"TLS1.3 default shares", tls.VersionTLS13, nil},
			{"TLS1.3 X25519 only", tls.VersionTLS13, []tls.CurveID{tls.X25519}},
		} {
			for _, resume := range []bool{false, true} {
				lines = append(lines, line{srv: s, name: v.name, version: v.version, curves: v.curves, resume: resume})
			}
		}
	}
	results := make([][]result, len(lines))
	for r := range rounds {
		for i := range lines {
			j := (i + r) % len(lines) // rotate the order: no line always runs first
			res, err := measure(lines[j], n, workers)
			if err != nil {
				return fmt.Errorf("%s: %w", lines[j], err)
			}
			results[j] = append(results[j], res)
		}
	}
	fmt.Printf("%-40s %10s %14s %10s\n", "line", "hs/s", "server µs/hs", "vs full")
	for i, l := range lines {
		rate := median(results[i], func(r result) float64 { return r.rate })
		cpu := median(results[i], func(r result) float64 { return r.serverCPU })
		vs := ""
		if l.resume {
			full := median(results[i-1], func(r result) float64 { return r.rate })
			vs = fmt.Sprintf("x%.2f", rate/full)
		}
		missed := 0
		for _, r := range results[i] {
			missed += r.notResume
		}
		note := ""
		if missed > 0 {
			note = fmt.Sprintf("  (%d handshakes not resumed)", missed)
		}
		fmt.Printf("%-40s %10.0f %14.0f %10s%s\n", l, rate, cpu, vs, note)
	}
	return nil
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// measure runs n handshakes of l over workers concurrent clients.
func measure(l line, n, workers int) (result, error) {
	cpu0, err := l.srv.cpu()
	if err != nil {
		return result{}, err
	}
	outs := make([]workerResult, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		count := n / workers
		if w < n%workers {
			count++
		}
		wg.Add(1)
		go handshakeWorker(&wg, l, count, &outs[w])
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := l.srv.cpu()
	if err != nil {
		return result{}, err
	}
	res := result{rate: float64(n) / elapsed.Seconds(), serverCPU: float64((cpu1 - cpu0).Microseconds()) / float64(n)}
	for _, o := range outs {
		if o.err != nil {
			return result{}, o.err
		}
		res.notResume += o.notResumed
	}
	return res, nil
}

type workerResult struct {
	notResumed int
	err        error
}

// handshakeWorker is one client doing count handshakes in a row; for a
// resumed line it first primes its session cache with a full handshake
// (not counted).
func handshakeWorker(wg *sync.WaitGroup, l line, count int, out *workerResult) {
	defer wg.Done()
	cfg := &tls.Config{
		RootCAs: l.srv.pool, ServerName: "localhost",
		MinVersion: l.version, MaxVersion: l.version,
		CurvePreferences: l.curves,
	}
	if l.resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		if _, err := handshake(l.srv.addr, cfg); err != nil {
			out.err = err
			return
		}
	}
	for range count {
		resumed, err := handshake(l.srv.addr, cfg)
		if err != nil {
			out.err = err
			return
		}
		if l.resume && !resumed {
			out.notResumed++
		}
	}
}

// handshake connects, shakes hands, reads the greeting and closes.
func handshake(addr string, cfg *tls.Config) (resumed bool, err error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	if err != nil {
		return false, fmt.Errorf("handshake and greeting from %s: %w", addr, err)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		return false, fmt.Errorf("greeting from %s: %q", addr, greeting)
	}
	return c.ConnectionState().DidResume, nil
}

// server is a pipegate process with one implicit-TLS listener.
type server struct {
	key    string // "ecdsa" or "rsa"
	label  string // for the lines, when not key: "rsa-ossl"
	addr   string
	pool   *x509.CertPool
	cmd    *exec.Cmd
	exited chan struct{}
}

func startServer(bin, dir, keyType string) (*server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := selfSigned(keyType)
	if err != nil {
		return nil, err
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"cert.pem":    string(certPEM),
		"key.pem":     string(keyPEM),
		"ticket.keys": hex.EncodeToString(k[:]) + "\n",
		"routes.yaml": "routes: []\ndefault: imap://127.0.0.1:1\n",
		"imap.yaml": "listen:\n  - addr: " + addr + "\n    tls: true\ntls:\n  cert: cert.pem\n  key: key.pem\n  ticket_keys: ticket.keys\n" +
			"routes_file: routes.yaml\nlog:\n  level: warn\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	s := &server{key: keyType, addr: addr, pool: pool, exited: make(chan struct{})}
	logFile, err := os.Create(filepath.Join(dir, "pipegate.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(bin, "imap", "--config", filepath.Join(dir, "imap.yaml"))
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go reap(s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "pipegate.log"))
			return nil, fmt.Errorf("pipegate exited before listening on %s:\n%s", addr, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("pipegate: nothing listens on %s", addr)
		}
	}
}

// reap waits for the pipegate process.
func reap(s *server) {
	s.cmd.Wait()
	close(s.exited)
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// cpu is the process's user+system CPU time so far.
func (s *server) cpu() (time.Duration, error) {
	st, err := procfs.ReadStat(s.cmd.Process.Pid)
	if err != nil {
		return 0, fmt.Errorf("pipegate CPU time: %w", err)
	}
	return st.CPU(), nil
}

func freeAddr() (string, error) { return freeport.Addr() }

// selfSigned returns a certificate for localhost and 127.0.0.1 with an
// ECDSA P-256 or RSA 2048 key, in PEM.
func selfSigned(keyType string) (certPEM, keyPEM []byte, err error) {
	var key any
	var pub any
	switch keyType {
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		key, pub = k, &k.PublicKey
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, nil, err
		}
		key, pub = k, &k.PublicKey
	default:
		return nil, nil, fmt.Errorf("key type %q", keyType)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
