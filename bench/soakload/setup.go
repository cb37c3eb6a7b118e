package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pipegate/pipegate/bench/internal/benchproc"
	"github.com/pipegate/pipegate/bench/internal/mailproto"
	"github.com/pipegate/pipegate/internal/freeport"
	"github.com/pipegate/pipegate/internal/testenv"
)

// The accounts: a.test is routed to Dovecot's plain ports, b.test to its
// TLS ones (implicit TLS, STARTTLS for ManageSieve).
const (
	userA    = "soak@a.test"
	userB    = "soak@b.test"
	password = "Soak-Secret-7f3a9"
	badPass  = "Wrong-Guess-c41d2"
)

// The protocols of the mail listeners.
const (
	imapProto       = mailproto.IMAP
	pop3Proto       = mailproto.POP3
	sieveProto      = mailproto.Sieve
	submissionProto = mailproto.Submission
)

var mailProtos = []string{imapProto, pop3Proto, sieveProto, submissionProto}

// The forwards, by name.
const (
	fwdPlain    = "plain"    // plain TCP on the event loops
	fwdGoAccept = "goaccept" // plain TCP on the Go accept path
	fwdTLS      = "tls"      // TLS termination
	fwdToTLS    = "totls"    // TLS origination to the TLS echo server
)

var forwardNames = []string{fwdPlain, fwdGoAccept, fwdTLS, fwdToTLS}

// Timeouts in the daemons' configs, short enough for the idle clients
// (5 to 45 s) to meet them: the mail login timeout, and the idle timeout
// of the forwards plain and tls (goaccept and totls have none).
const (
	drainTimeout   = "6s" // within benchproc's 10 s before SIGKILL
	loginTimeout   = "30s"
	fwdIdleTimeout = "10s"
)

// fwdIdle says which forwards have fwdIdleTimeout.
var fwdIdle = map[string]bool{fwdPlain: true, fwdTLS: true}

// mailListener is one listener of `pipegate mail`; mailListeners are
// mailproto's.
type mailListener = mailproto.Listener

var mailListeners = mailproto.Listeners

// daemon is a running pipegate and what the soak needs of it.
type daemon struct {
	name    string // "mail", "forward"
	proc    *benchproc.Process
	log     string // its log file (JSON lines)
	config  string
	metrics string // host:port of /metrics
}

// env is everything the soak started.
type env struct {
	pipegate  string // the binary
	dir       string
	cert, key string
	clientTLS *tls.Config // verifies the soak's certificate
	// tlsVariants are what the clients pick from: TLS 1.3, TLS 1.2 (the
	// pipe engine's goroutine fallback), and TLS 1.3 resuming sessions.
	tlsVariants []*tls.Config

	sink        *testenv.SMTPSink
	dovecot     *testenv.Dovecot
	dovecotBin  string
	restarted   *benchproc.Process // Dovecot after its restart, if any
	restartedMu sync.Mutex

	mail      *daemon
	mailAddrs map[mailListener]string
	routes    string // the routes file
	fwd       *daemon
	fwdAddrs  map[string]string // forward name -> listen address
	echo      *echoServer

	routesBody  [2]string // the two contents the reloads alternate
	forwardBody [2]string
}

// setUp starts every server. On error, the env returned (if not nil) must
// still be torn down.
func setUp(ctx context.Context, o options) (*env, error) {
	e := &env{pipegate: o.pipegate}
	var err error
	if e.dir, err = benchproc.TempDir("pipegate-soak-"); err != nil {
		return nil, err
	}
	if e.cert, e.key, e.clientTLS, err = writeCert(e.dir); err != nil {
		return e, err
	}
	tls12, resuming := e.clientTLS.Clone(), e.clientTLS.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	resuming.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	e.tlsVariants = []*tls.Config{e.clientTLS, tls12, resuming}
	if e.sink, err = testenv.NewSMTPSink(); err != nil {
		return e, err
	}
	e.dovecotBin = benchproc.Binary("dovecot")
	all := []string{testenv.IMAP, testenv.POP3, testenv.Sieve, testenv.Submission}
	e.dovecot, err = testenv.NewDovecot(e.dovecotBin, testenv.DovecotOptions{
		Users:           map[string]string{userA: password, userB: password},
		TrustedNetworks: []string{"127.0.0.1/32"}, // pipegate passes the client's address
		CertFile:        e.cert, KeyFile: e.key,
		Protocols:       all,
		SubmissionRelay: e.sink.Addr, // outlives Dovecot's restart
		Extra:           "default_client_limit = 4096\nmail_max_userip_connections = 10000\n",
	})
	if err != nil {
		return e, fmt.Errorf("dovecot: %w", err)
	}
	if e.echo, err = startEcho(e.cert, e.key); err != nil {
		return e, err
	}
	if err := e.startMail(ctx); err != nil {
		return e, err
	}
	if err := e.startForward(ctx); err != nil {
		return e, err
	}
	return e, nil
}

// startMail writes the config and routes of `pipegate mail` and starts it.
func (e *env) startMail(ctx context.Context) error {
	d := e.dovecot
	base := fmt.Sprintf(`routes:
  - domain: b.test
    backends: [imaps://%s, pop3s://%s, sieve+starttls://%s, submissions://%s]
default: [imap://%s, pop3://%s, sieve://%s, submission://%s]
`, d.TLSAddr, d.POP3TLSAddr, d.SieveAddr, d.SubmissionTLSAddr, d.Addr, d.POP3Addr, d.SieveAddr, d.SubmissionAddr)
	e.routesBody = [2]string{base, base + "# reloaded\n"}
	e.routes = filepath.Join(e.dir, "routes.yaml")
	if err := os.WriteFile(e.routes, []byte(e.routesBody[0]), 0o644); err != nil {
		return err
	}
	e.mailAddrs = map[mailListener]string{}
	var listen strings.Builder
	var addrs []string
	for _, l := range mailListeners {
		a, err := freeport.Addr()
		if err != nil {
			return err
		}
		e.mailAddrs[l] = a
		addrs = append(addrs, a)
		fmt.Fprintf(&listen, "  - {addr: %q, protocol: %s, tls: %t}\n", a, l.Proto, l.TLS)
	}
	metrics, err := freeport.Addr()
	if err != nil {
		return err
	}
	config := filepath.Join(e.dir, "mail.yaml")
	body := fmt.Sprintf(`listen:
%stls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: %s
hostname: pipegate.test
allow_plaintext_auth: true
metrics_addr: %q
drain_timeout: %s
login_timeout: %s
max_connections_per_ip: %d
log:
  format: json
  level: info
`, listen.String(), e.cert, e.key, e.cert, e.routes, metrics, drainTimeout, loginTimeout, mailPerIPLimit)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		return err
	}
	e.mail = &daemon{name: "mail", log: filepath.Join(e.dir, "mail.log"), config: config, metrics: metrics}
	e.mail.proc, err = benchproc.Start(ctx, benchproc.Server{
		Name: "pipegate mail", Argv: []string{e.pipegate, "mail", "--config", config},
		Log: e.mail.log, Listen: append(addrs, metrics),
	})
	return err
}

// startForward writes the config of `pipegate forward` and starts it.
func (e *env) startForward(ctx context.Context) error {
	e.fwdAddrs = map[string]string{}
	var addrs []string
	for _, n := range forwardNames {
		a, err := freeport.Addr()
		if err != nil {
			return err
		}
		e.fwdAddrs[n] = a
		addrs = append(addrs, a)
	}
	metrics, err := freeport.Addr()
	if err != nil {
		return err
	}
	for i, dial := range []string{"5s", "6s"} {
		e.forwardBody[i] = fmt.Sprintf(`metrics_addr: %q
log_format: json
log_level: info
drain_timeout: %s
forwards:
  - {name: %s, listen: %q, to: [%q], dial_timeout: %s, idle_timeout: %s, max_conns_per_ip: %d}
  - {name: %s, listen: %q, to: [%q], go_accept: true, dial_timeout: %s, max_conns_per_ip: %d}
  - {name: %s, listen: %q, to: [%q], tls: {cert: %q, key: %q}, dial_timeout: %s, idle_timeout: %s, max_conns_per_ip: %d}
  - {name: %s, listen: %q, to: [%q], to_tls: {ca: %q, server_name: 127.0.0.1}, dial_timeout: %s, max_conns_per_ip: %d}
`, metrics, drainTimeout,
			fwdPlain, e.fwdAddrs[fwdPlain], e.echo.plain, dial, fwdIdleTimeout, fwdPerIPLimit,
			fwdGoAccept, e.fwdAddrs[fwdGoAccept], e.echo.plain, dial, fwdPerIPLimit,
			fwdTLS, e.fwdAddrs[fwdTLS], e.echo.plain, e.cert, e.key, dial, fwdIdleTimeout, fwdPerIPLimit,
			fwdToTLS, e.fwdAddrs[fwdToTLS], e.echo.tls, e.cert, dial, fwdPerIPLimit)
	}
	config := filepath.Join(e.dir, "forward.yaml")
	if err := os.WriteFile(config, []byte(e.forwardBody[0]), 0o644); err != nil {
		return err
	}
	e.fwd = &daemon{name: "forward", log: filepath.Join(e.dir, "forward.log"), config: config, metrics: metrics}
	e.fwd.proc, err = benchproc.Start(ctx, benchproc.Server{
		Name: "pipegate forward", Argv: []string{e.pipegate, "forward", "--config", config},
		Log: e.fwd.log, Listen: append(addrs, metrics),
	})
	return err
}

// pickTLS returns one of the client TLS variants, at random.
func (e *env) pickTLS() *tls.Config { return e.tlsVariants[mrand.IntN(len(e.tlsVariants))] }

// tearDown stops every server and removes the working folder unless keep.
func (e *env) tearDown(keep bool) {
	for _, d := range []*daemon{e.mail, e.fwd} {
		if d != nil && d.proc != nil {
			d.proc.Stop()
		}
	}
	if e.dovecot != nil {
		e.dovecot.Close()
	}
	e.restartedMu.Lock()
	if e.restarted != nil {
		syscall.Kill(-e.restarted.Pgid(), syscall.SIGKILL) // as testenv stops Dovecot: nothing worth a clean stop
		e.restarted.Stop()
	}
	e.restartedMu.Unlock()
	if e.echo != nil {
		e.echo.close()
	}
	if e.sink != nil {
		e.sink.Close()
	}
	if e.dir == "" {
		return
	}
	if keep {
		fmt.Fprintln(os.Stderr, "soakload: kept", e.dir)
		if e.dovecot != nil {
			fmt.Fprintln(os.Stderr, "soakload: kept", e.dovecot.Dir)
		}
		return
	}
	os.RemoveAll(e.dir)
	if e.dovecot != nil {
		os.RemoveAll(e.dovecot.Dir)
	}
}

// restartDovecot kills Dovecot's process group and starts its master
// again on the same config (so on the same ports) after down.
func (e *env) restartDovecot(ctx context.Context, down time.Duration) error {
	if err := e.dovecot.Close(); err != nil {
		return fmt.Errorf("dovecot restart: kill: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(down):
	}
	d := e.dovecot
	p, err := benchproc.Start(ctx, benchproc.Server{
		Name: "dovecot (restarted)", Argv: []string{e.dovecotBin, "-F", "-c", d.Config},
		Log:    filepath.Join(e.dir, "dovecot-restart.stderr"),
		Listen: []string{d.Addr, d.TLSAddr, d.POP3Addr, d.POP3TLSAddr, d.SieveAddr, d.SubmissionAddr, d.SubmissionTLSAddr},
	})
	if err != nil {
		return fmt.Errorf("dovecot restart: %w", err)
	}
	e.restartedMu.Lock()
	e.restarted = p
	e.restartedMu.Unlock()
	return nil
}

// writeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1
// and localhost, used by every server, and returns a client config that
// trusts it.
func writeCert(dir string) (certFile, keyFile string, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, fmt.Errorf("certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"pipegate soak"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, fmt.Errorf("certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, fmt.Errorf("certificate key: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", nil, err
	}
	// Dovecot's login processes read the key after dropping privileges.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o644); err != nil {
		return "", "", nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		return "", "", nil, errors.New("certificate: cannot read back")
	}
	return certFile, keyFile, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, nil
}
