package tests

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/realserver"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// instanceOptions describe one pipegate instance of a group sharing a
// routes file, a certificate and, optionally, ticket keys and Redis.
type instanceOptions struct {
	ca         *tlstest.CA
	routes     string // routes file (absolute)
	ticketKeys string // tls.ticket_keys; "" for none
	extra      string // appended to the config
	drain      string // drain_timeout; "" for 10s
}

// startInstance runs the pipegate binary with a plain and an implicit-TLS
// listener, both taking PROXY v2 headers from 127.0.0.1 (where HAProxy
// connects from; clients on 127.0.0.2 and up connect directly), and the
// metrics port. It reuses env's start and
// stop (SIGTERM, clean exit, no password in the log).
func startInstance(t *testing.T, o instanceOptions) *env {
	t.Helper()
	dir := t.TempDir()
	cert, key := o.ca.Issue(t, "127.0.0.1", "localhost")
	e := &env{
		t: t, ca: o.ca, dir: dir,
		plainAddr: testenv.FreeAddr(t), tlsAddr: testenv.FreeAddr(t), metricsAddr: testenv.FreeAddr(t),
		configPath: filepath.Join(dir, "imap.yaml"),
	}
	drain := o.drain
	if drain == "" {
		drain = "10s"
	}
	ticketKeys := ""
	if o.ticketKeys != "" {
		ticketKeys = "\n  ticket_keys: " + o.ticketKeys
	}
	writeFile(t, e.configPath, fmt.Sprintf(`listen:
  - addr: %s
    accept_proxy: true
    trusted_proxies: [127.0.0.1/32]
  - addr: %s
    tls: true
    accept_proxy: true
    trusted_proxies: [127.0.0.1/32]
tls:
  cert: %s
  key: %s%s
routes_file: %s
allow_plaintext_auth: true
metrics_addr: %s
drain_timeout: %s
log:
  level: debug
%s`, e.plainAddr, e.tlsAddr, cert, key, ticketKeys, o.routes, e.metricsAddr, drain, o.extra))
	e.start()
	return e
}

// countLog counts the lines of e's log matching pattern.
func countLog(e *env, pattern string) int {
	return len(regexp.MustCompile(pattern).FindAllStringIndex(e.log(), -1))
}

// sighup reloads e and waits until its log says the certificate (and with
// it the ticket keys) was reloaded.
func sighup(t *testing.T, e *env) {
	t.Helper()
	const done = `imap: certificate reloaded`
	before := countLog(e, done)
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for delay := 5 * time.Millisecond; countLog(e, done) == before; delay = min(2*delay, 100*time.Millisecond) {
		if time.Now().After(deadline) || strings.Contains(e.log(), "reload failed") {
			t.Fatalf("no %q after SIGHUP:\n%s", done, e.log())
		}
		time.Sleep(delay) // polling a log file with a deadline
	}
}

// newTicketKey returns a random session ticket key as written in a
// ticket key file (64 hex digits).
func newTicketKey(t *testing.T) string {
	t.Helper()
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k[:])
}

// tlsGreeting does a TLS handshake with addr (implicit TLS), reads the
// IMAP greeting (which also reads the session tickets a TLS 1.3 server
// sends after the handshake) and reports whether the session was resumed.
func tlsGreeting(t *testing.T, addr string, cfg *tls.Config) bool {
	t.Helper()
	c := tls.Client(dialFrom(t, "127.0.0.2", addr), cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("%s: greeting %q: %v", addr, line, err)
	}
	return c.ConnectionState().DidResume
}

// httpGet returns the status and body of GET url (no keep-alive: no
// goroutine outlives the call).
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitUntil polls cond (bounded) until it is true or fails the test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for delay := 5 * time.Millisecond; !cond(); delay = min(2*delay, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(delay) // polling an outside process with a deadline
	}
}

// refused reports whether nothing listens on addr any more.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// haproxy is an HAProxy process started by a test.
type haproxy struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// startHAProxy runs haproxy (Debian package haproxy) in the foreground with
// config, waits until listen accepts connections and stops it in
// t.Cleanup.
func startHAProxy(t *testing.T, config, listen string) *haproxy {
	t.Helper()
	bin := testenv.LookPath(t, "haproxy", "haproxy")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, cfgPath, config)
	if out, err := exec.Command(bin, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, config)
	}
	h := &haproxy{log: filepath.Join(dir, "haproxy.log"), exited: make(chan struct{})}
	logFile, err := os.Create(h.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	h.cmd = exec.Command(bin, "-db", "-f", cfgPath)
	h.cmd.Stdout, h.cmd.Stderr = logFile, logFile
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go waitHAProxy(h)
	t.Cleanup(func() {
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.exited
		if t.Failed() {
			b, _ := os.ReadFile(h.log)
			t.Logf("haproxy output:\n%s", b)
		}
	})
	waitUntil(t, "haproxy listening on "+listen, func() bool {
		select {
		case <-h.exited:
			b, _ := os.ReadFile(h.log)
			t.Fatalf("haproxy exited: %v\n%s", h.err, b)
		default:
		}
		return !refused(listen)
	})
	return h
}

// waitHAProxy reaps the haproxy process.
func waitHAProxy(h *haproxy) {
	h.err = h.cmd.Wait()
	close(h.exited)
}

// redisMonitor reads Redis's MONITOR stream: every command any client
// sends, one line each.
type redisMonitor struct {
	c net.Conn
	r *bufio.Reader
}

func startRedisMonitor(t *testing.T, addr string) *redisMonitor {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &redisMonitor{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, "MONITOR\r\n"); err != nil {
		t.Fatal(err)
	}
	if l, err := m.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("redis MONITOR: %q %v", l, err)
	}
	return m
}

// waitFor reads commands until one contains all of words, ignoring case
// (at most 1000 lines, within ioTimeout), and returns it.
func (m *redisMonitor) waitFor(t *testing.T, words ...string) string {
	t.Helper()
	m.c.SetDeadline(time.Now().Add(ioTimeout))
	var seen []string
next:
	for range 1000 {
		l, err := m.r.ReadString('\n')
		if err != nil {
			t.Fatalf("redis MONITOR: waiting for %q: %v (seen %q)", words, err, seen)
		}
		seen = append(seen, strings.TrimSpace(l))
		for _, w := range words {
			if !strings.Contains(strings.ToLower(l), strings.ToLower(w)) {
				continue next
			}
		}
		return l
	}
	t.Fatalf("redis MONITOR: no command with %q in 1000", words)
	return ""
}

// startRedis runs a redis-server (Debian package redis-server) for the
// test, stopped in t.Cleanup.
func startRedis(t *testing.T) *realserver.Redis {
	t.Helper()
	r, err := realserver.StartRedis(t.TempDir())
	realserver.Need(t, err)
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	})
	return r
}
