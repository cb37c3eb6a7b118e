package tests

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// The accounts of the two Dovecot backends; each has its own number of
// messages, so that a client can tell which backend it reached.
var (
	backend1Users = map[string]string{"alice@a.test": "alice-secret", "carol@a.test": "carol-secret"}
	backend2Users = map[string]string{"bob@b.test": "bob-secret", "dave@b.test": "dave-secret", "zoe@c.test": "zoe-secret"}
	messageCount  = map[string]int{"alice@a.test": 2, "carol@a.test": 3, "bob@b.test": 1, "dave@b.test": 4, "zoe@c.test": 5}
	// guess@g.test lives on an in-memory backend without an auth penalty
	// of its own, for the password-guessing test.
	guessUser, guessPass = "guess@g.test", "guess-secret"
)

func password(account string) string {
	if p, ok := backend1Users[account]; ok {
		return p
	}
	if account == guessUser {
		return guessPass
	}
	return backend2Users[account]
}

// allMessages makes messageCount[account] messages for each of users.
func allMessages(users map[string]string) map[string][]string {
	out := map[string][]string{}
	for a := range users {
		for i := range messageCount[a] {
			out[a] = append(out[a], fmt.Sprintf("From: test@pipegate.test\r\nTo: %s\r\nSubject: message %d for %s\r\n\r\nbody %d\r\n", a, i+1, a, i+1))
		}
	}
	return out
}

// envOptions vary the pipegate config of an env.
type envOptions struct {
	extra          string // appended to the pipegate config
	allowPlaintext bool
	acceptProxy    bool // a third listener (env.proxyAddr) takes PROXY headers from 127.0.0.1
}

// env is two Dovecot backends, an in-memory backend and the pipegate
// binary in front of them.
type env struct {
	t          *testing.T
	ca         *tlstest.CA
	caFile     string
	d1, d2     *testenv.Dovecot
	memAddr    string
	dir        string
	routesPath string
	configPath string
	deadAddr   string // a port nobody listens on

	plainAddr, tlsAddr, metricsAddr string
	proxyAddr                       string // with envOptions.acceptProxy
	certFile, keyFile               string // pipegate's certificate, from ca

	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	testenv.LookPath(t, "dovecot", "dovecot-imapd")
	e := &env{t: t, ca: tlstest.NewCA(t), dir: t.TempDir()}
	e.caFile = e.ca.CertFile(t)
	cert, key := e.ca.Issue(t, "127.0.0.1", "localhost", "imap.backend.test")
	trusted := []string{"127.0.0.1/32"} // pipegate dials from 127.0.0.1
	e.d1 = testenv.StartDovecot(t, testenv.DovecotOptions{Users: backend1Users, Messages: allMessages(backend1Users), TrustedNetworks: trusted, CertFile: cert, KeyFile: key})
	e.d2 = testenv.StartDovecot(t, testenv.DovecotOptions{Users: backend2Users, Messages: allMessages(backend2Users), TrustedNetworks: trusted, CertFile: cert, KeyFile: key})
	e.memAddr = startMemBackend(t)
	e.deadAddr = testenv.FreeAddr(t)

	e.routesPath = filepath.Join(e.dir, "routes.yaml")
	e.writeRoutes("")
	pcert, pkey := e.ca.Issue(t, "127.0.0.1", "localhost")
	e.certFile, e.keyFile = pcert, pkey
	e.plainAddr, e.tlsAddr, e.metricsAddr = testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	listeners := ""
	if opts.acceptProxy {
		e.proxyAddr = testenv.FreeAddr(t)
		listeners = fmt.Sprintf("  - addr: %s\n    accept_proxy: true\n    trusted_proxies: [127.0.0.1/32]\n", e.proxyAddr)
	}
	config := fmt.Sprintf(`listen:
  - addr: %s
  - addr: %s
    tls: true
%stls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: routes.yaml
allow_plaintext_auth: %v
metrics_addr: %s
auth_penalty:
  base: 1ms
  max: 5ms
drain_timeout: 5s
log:
  level: debug
%s`, e.plainAddr, e.tlsAddr, listeners, pcert, pkey, e.caFile, opts.allowPlaintext, e.metricsAddr, opts.extra)
	e.configPath = filepath.Join(e.dir, "imap.yaml")
	writeFile(t, e.configPath, config)
	e.start()
	return e
}

// writeRoutes writes the routes file with extra rules first.
func (e *env) writeRoutes(extra string) {
	writeFile(e.t, e.routesPath, fmt.Sprintf(`routes:
%s  - account: alice@a.test
    backend: imap://%s
  - account: carol@a.test          # first backend down: failover, then STARTTLS to Dovecot
    backends:
      - imap://%s
      - imap+starttls://%s?server_name=imap.backend.test
  - domain: b.test
    backend: imaps://%s
  - account: down@b.test
    backends:
      - imap://%s
  - account: %s
    backend: imap://%s
default: imap://%s
`, extra, e.d1.Addr, e.deadAddr, e.d1.Addr, e.d2.TLSAddr, e.deadAddr, guessUser, e.memAddr, e.d1.Addr))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs the pipegate binary and waits until its ports answer.
func (e *env) start() {
	t := e.t
	e.logPath = filepath.Join(e.dir, "pipegate.log")
	logFile, err := os.Create(e.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	e.cmd = exec.Command(pipegateBin, "imap", "--config", e.configPath)
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.exited = make(chan struct{})
	go waitProcess(e)
	t.Cleanup(e.stop)
	for _, addr := range []string{e.plainAddr, e.tlsAddr} {
		if err := e.waitListening(addr); err != nil {
			t.Fatal(err)
		}
	}
}

// waitProcess reaps the pipegate process.
func waitProcess(e *env) {
	e.waitErr = e.cmd.Wait()
	close(e.exited)
}

func (e *env) waitListening(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-e.exited:
			return fmt.Errorf("pipegate exited (%v) before listening on %s:\n%s", e.waitErr, addr, e.log())
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pipegate: nothing listens on %s:\n%s", addr, e.log())
		}
	}
}

// stop sends SIGTERM and checks a clean exit; it also checks that no
// password reached the log.
func (e *env) stop() {
	t := e.t
	select {
	case <-e.exited:
	default:
		e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(20 * time.Second):
			e.cmd.Process.Kill()
			<-e.exited
			t.Errorf("pipegate did not stop within 20s of SIGTERM")
		}
	}
	log := e.log()
	if e.waitErr != nil {
		t.Errorf("pipegate exit: %v", e.waitErr)
	}
	for _, p := range []string{"alice-secret", "bob-secret", "carol-secret", "dave-secret", "zoe-secret", guessPass} {
		if strings.Contains(log, p) {
			t.Errorf("the log holds the password %q", p)
		}
	}
	if strings.Contains(log, "panic") {
		t.Errorf("the log shows a panic")
	}
	if t.Failed() {
		t.Logf("pipegate log:\n%s", log)
	}
}

func (e *env) log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

// waitLog polls pipegate's log for a line matching pattern.
func (e *env) waitLog(pattern string) string {
	e.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(10 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		for _, line := range strings.Split(e.log(), "\n") {
			if re.MatchString(line) {
				return line
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no line matching %q in the pipegate log:\n%s", pattern, e.log())
		}
		time.Sleep(delay) // polling a file with a deadline
	}
}

// clientTLS verifies pipegate's certificate.
func (e *env) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}
}

// startMemBackend serves guess@g.test from memory (go-imap v2), stopped
// by t.Cleanup.
func startMemBackend(t *testing.T) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(guessUser, guessPass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imapv2.CapSet{imapv2.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go serveMem(srv, l, done)
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return l.Addr().String()
}

// serveMem is the in-memory backend's accept loop.
func serveMem(srv *imapserver.Server, l net.Listener, done chan<- struct{}) {
	defer close(done)
	srv.Serve(l)
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// metrics fetches pipegate's /metrics text.
func (e *env) metrics() string {
	e.t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "5", "http://"+e.metricsAddr+"/metrics").CombinedOutput()
	if err != nil {
		e.t.Fatalf("GET /metrics: %v\n%s", err, out)
	}
	return string(bytes.TrimSpace(out))
}
