package main

// End-to-end tests of `pipegate forward` through the built binary: the
// upstreams and clients run in the test process, the forwarder in its own.
// Readiness is read from the forwarder's JSON log lines, never slept for.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// fwdBin is the pipegate binary built once by TestMain.
var fwdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipegate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fwdBin = filepath.Join(dir, "pipegate")
	build := exec.Command("go", "build", "-o", fwdBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pipegate:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fwdWait bounds every wait of these tests.
const fwdWait = 15 * time.Second

// fwdLeakCheck checks for leaked goroutines after every other cleanup of t.
func fwdLeakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// fwdProc is a running `pipegate forward`.
type fwdProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	recs   []map[string]any
	raw    []string
	change chan struct{}
	exited chan struct{}
	code   int
}

// fwdStart runs `pipegate forward args... --log-format json` and waits for
// want "forward listening" lines.
func fwdStart(t *testing.T, want int, args ...string) *fwdProc {
	t.Helper()
	p := &fwdProc{change: make(chan struct{}), exited: make(chan struct{})}
	p.cmd = exec.Command(fwdBin, append([]string{"forward", "--log-format", "json"}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go fwdReadLog(p, stderr)
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			p.mu.Lock()
			t.Logf("pipegate log:\n%s", strings.Join(p.raw, "\n"))
			p.mu.Unlock()
		}
	})
	for i := 1; i <= want; i++ {
		p.waitLog(t, "forward listening", i)
	}
	return p
}

func fwdReadLog(p *fwdProc, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec map[string]any
		json.Unmarshal(sc.Bytes(), &rec)
		p.mu.Lock()
		p.raw = append(p.raw, sc.Text())
		if rec != nil {
			p.recs = append(p.recs, rec)
		}
		close(p.change)
		p.change = make(chan struct{})
		p.mu.Unlock()
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.code = p.cmd.ProcessState.ExitCode()
	if err != nil && p.code == 0 {
		p.code = -1
	}
	p.mu.Unlock()
	close(p.exited)
}

// waitLog returns the n-th (from 1) log record with message msg.
func (p *fwdProc) waitLog(t *testing.T, msg string, n int) map[string]any {
	t.Helper()
	deadline := time.After(fwdWait)
	for {
		p.mu.Lock()
		seen := 0
		for _, r := range p.recs {
			if r["msg"] == msg {
				if seen++; seen == n {
					p.mu.Unlock()
					return r
				}
			}
		}
		ch := p.change
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.exited:
			p.mu.Lock()
			code, log := p.code, strings.Join(p.raw, "\n")
			p.mu.Unlock()
			t.Fatalf("pipegate exited (code %d) before log #%d %q:\n%s", code, n, msg, log)
		case <-deadline:
			t.Fatalf("no log #%d %q within %v", n, msg, fwdWait)
		}
	}
}

// addr returns the address of the n-th forward listening.
func (p *fwdProc) addr(t *testing.T, n int) string {
	t.Helper()
	return p.waitLog(t, "forward listening", n)["addr"].(string)
}

// exitCode waits for the process to exit.
func (p *fwdProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(fwdWait):
		t.Fatal("pipegate did not exit")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// fwdUpstream serves handle on a loopback listener (TLS when cfg != nil).
func fwdUpstream(t *testing.T, cfg *tls.Config, handle func(net.Conn)) string {
	t.Helper()
	return testserver.Start(t, cfg, fwdWait, handle)
}

// fwdProxyInfo parses the PROXY header and answers "vN src".
func fwdProxyInfo(c net.Conn) {
	h, err := proxyproto.Read(bufio.NewReader(c))
	if err != nil {
		io.WriteString(c, "error: "+err.Error())
		return
	}
	fmt.Fprintf(c, "v%d %s", h.Version, h.SourceAddr)
}

// fwdPeerCN answers the common name of the client certificate.
func fwdPeerCN(c net.Conn) {
	tc := c.(*tls.Conn)
	if err := tc.Handshake(); err != nil {
		return
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		io.WriteString(c, "cn="+certs[0].Subject.CommonName)
		return
	}
	io.WriteString(c, "no client certificate")
}

func fwdDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, fwdWait)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(fwdWait))
	t.Cleanup(func() { c.Close() })
	return c
}

// fwdRoundTrip sends msg, half-closes (closes a TLS conn's write side with
// close_notify) and returns what comes back.
func fwdRoundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(fwdWait))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, b)
	}
	return string(b)
}

// fwdRefused expects c closed without an answer (EOF, reset or a failed
// TLS handshake).
func fwdRefused(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(fwdWait))
	io.WriteString(c, msg)
	b, err := io.ReadAll(c)
	var ne net.Error
	if len(b) > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("got %q, %v; want the connection closed", b, err)
	}
}

func fwdClosedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestForwardE2EPlainAndMetrics(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", up, "--name", "plain", "--metrics-addr", "127.0.0.1:0")
	addr := p.addr(t, 1)
	if got := fwdRoundTrip(t, fwdDial(t, addr), "hello, world"); got != "hello, world" {
		t.Fatalf("echo through forward = %q", got)
	}
	r := p.waitLog(t, "connection closed", 1)
	for k, want := range map[string]any{"forward": "plain", "upstream": up, "bytes_to_upstream": 12.0, "bytes_to_client": 12.0, "reason": "eof"} {
		if r[k] != want {
			t.Errorf("log %s = %v, want %v (%v)", k, r[k], want, r)
		}
	}
	if _, ok := r["duration"]; !ok || !strings.HasPrefix(r["client"].(string), "127.0.0.1:") {
		t.Errorf("log line lacks duration or client: %v", r)
	}
	maddr := p.waitLog(t, "metrics listening", 1)["addr"].(string)
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pipegate_forward_connections_total{forward="plain"} 1`,
		`pipegate_forward_bytes_total{direction="to_upstream",forward="plain"} 12`,
		`pipegate_forward_connections_open{forward="plain"} 0`,
		`pipegate_forward_connection_duration_seconds_count{forward="plain"} 1`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestForwardE2EUnixSockets(t *testing.T) {
	fwdLeakCheck(t)
	dir := t.TempDir()
	upPath := filepath.Join(dir, "up.sock")
	ln, err := net.Listen("unix", upPath)
	if err != nil {
		t.Fatal(err)
	}
	testserver.Serve(t, ln, fwdWait, testserver.Echo)
	front := filepath.Join(dir, "front.sock")
	p := fwdStart(t, 1, "--listen", "unix:"+front, "--to", "unix:"+upPath, "--send-proxy", "v1")
	if got := p.addr(t, 1); got != "unix:"+front {
		t.Errorf("listening on %q", got)
	}
	c, err := net.Dial("unix", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The client has no IP address: the PROXY header says UNKNOWN.
	if got := fwdRoundTrip(t, c, "x"); got != "PROXY UNKNOWN\r\nx" {
		t.Fatalf("got %q", got)
	}
}

func TestForwardE2ETLSTerminate(t *testing.T) {
	fwdLeakCheck(t)
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "front.example")
	up := fwdUpstream(t, nil, testserver.Echo)
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", up, "--tls-cert", cert, "--tls-key", key)
	c := tls.Client(fwdDial(t, p.addr(t, 1)), &tls.Config{RootCAs: ca.Pool(), ServerName: "front.example"})
	if got := fwdRoundTrip(t, c, "secret"); got != "secret" {
		t.Fatalf("got %q", got)
	}
	c.Close()
	if r := p.waitLog(t, "connection closed", 1); r["sni"] != "front.example" || r["bytes_to_upstream"] != 6.0 {
		t.Errorf("log: %v", r)
	}
	// A plain-text client is refused and logged; the forward goes on.
	fwdRefused(t, fwdDial(t, p.addr(t, 1)), "GET / HTTP/1.0\r\n\r\n")
	if r := p.waitLog(t, "connection refused", 1); r["reason"] != "tls-handshake" {
		t.Errorf("log: %v", r)
	}
}

func TestForwardE2EClientCertificates(t *testing.T) {
	fwdLeakCheck(t)
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	up := fwdUpstream(t, nil, testserver.Greet("in"))
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", up, "--tls-cert", cert, "--tls-key", key, "--client-ca", ca.CertFile(t))
	addr := p.addr(t, 1)
	anon := tls.Client(fwdDial(t, addr), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	anon.Handshake() // TLS 1.3: the server's verdict arrives with the first read
	if b, err := io.ReadAll(anon); err == nil || len(b) > 0 {
		t.Fatalf("client without certificate got %q, %v", b, err)
	}
	if r := p.waitLog(t, "connection refused", 1); r["reason"] != "tls-handshake" {
		t.Errorf("log: %v", r)
	}
	cc := ca.ClientCert(t, "alice")
	c := tls.Client(fwdDial(t, addr), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{cc}})
	if got := fwdRoundTrip(t, c, ""); got != "in" {
		t.Fatalf("client with certificate got %q", got)
	}
}

func TestForwardE2ETLSOriginate(t *testing.T) {
	fwdLeakCheck(t)
	ca := tlstest.NewCA(t)
	srvCert := ca.IssueCert(t, "backend.example")
	up := fwdUpstream(t, &tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
	}, fwdPeerCN)
	ccert, ckey := ca.ClientCertFiles(t, "pipegate")
	p := fwdStart(t, 3,
		"--config", fwdWriteConfig(t, fmt.Sprintf(`
forwards:
  - name: verified
    listen: 127.0.0.1:0
    to: [%[1]s]
    to_tls:
      ca: %[2]s
      server_name: backend.example
  - name: mtls
    listen: 127.0.0.1:0
    to: [%[1]s]
    to_tls:
      ca: %[2]s
      server_name: backend.example
      cert: %[3]s
      key: %[4]s
  - name: system-roots
    listen: 127.0.0.1:0
    to: [%[1]s]
    to_tls: {server_name: backend.example}
`, up, ca.CertFile(t), ccert, ckey)))
	if got := fwdRoundTrip(t, fwdDial(t, p.addr(t, 1)), ""); got != "no client certificate" {
		t.Errorf("verified: got %q", got)
	}
	if got := fwdRoundTrip(t, fwdDial(t, p.addr(t, 2)), ""); got != "cn=pipegate" {
		t.Errorf("mtls: got %q", got)
	}
	// Verification is on by default: the test CA is not a system root.
	fwdRefused(t, fwdDial(t, p.addr(t, 3)), "")
	r := p.waitLog(t, "connection refused", 1)
	if r["reason"] != "dial" || !strings.Contains(r["err"].(string), "certificate") {
		t.Errorf("log: %v", r)
	}
}

func fwdWriteConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestForwardE2EProxyProtocol(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, fwdProxyInfo)
	p := fwdStart(t, 3, "--config", fwdWriteConfig(t, fmt.Sprintf(`
forwards:
  - {name: v1, listen: "127.0.0.1:0", to: ["%[1]s"], send_proxy: v1}
  - {name: v2, listen: "127.0.0.1:0", to: ["%[1]s"], send_proxy: v2}
  - listen: 127.0.0.1:0
    to: ["%[1]s"]
    send_proxy: v2
    accept_proxy: true
    trusted_proxy: [127.0.0.1/32]
`, up)))
	for i, want := range []string{"v1 127.0.0.1:", "v2 127.0.0.1:"} {
		c := fwdDial(t, p.addr(t, i+1))
		local := c.LocalAddr().String()
		if got := fwdRoundTrip(t, c, ""); got != want+local[strings.LastIndex(local, ":")+1:] {
			t.Errorf("send-proxy %s: upstream saw %q, client is %s", want[:2], got, local)
		}
	}
	// accept-proxy: the client address comes from the header.
	third := p.addr(t, 3)
	if got := fwdRoundTrip(t, fwdDial(t, third), "PROXY TCP4 192.0.2.9 192.0.2.1 5555 443\r\n"); got != "v2 192.0.2.9:5555" {
		t.Errorf("accept-proxy v1 -> send v2: upstream saw %q", got)
	}
	v2 := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 6666}, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443})
	hdr, _ := v2.Format()
	if got := fwdRoundTrip(t, fwdDial(t, third), string(hdr)); got != "v2 [2001:db8::7]:6666" {
		t.Errorf("accept-proxy v2: upstream saw %q", got)
	}
	// Garbage instead of a header: closed and logged, nothing else affected.
	fwdRefused(t, fwdDial(t, third), "HELLO I AM NOT A PROXY HEADER\r\n")
	if r := p.waitLog(t, "connection refused", 1); r["reason"] != "proxy-header" {
		t.Errorf("log: %v", r)
	}
	if got := fwdRoundTrip(t, fwdDial(t, third), "PROXY TCP4 192.0.2.10 192.0.2.1 5555 443\r\n"); got != "v2 192.0.2.10:5555" {
		t.Errorf("after garbage: upstream saw %q", got)
	}
}

func TestForwardE2ESNIRouting(t *testing.T) {
	fwdLeakCheck(t)
	ca := tlstest.NewCA(t)
	serve := func(name string) string {
		return fwdUpstream(t, &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, name)}}, testserver.Greet(name))
	}
	a, b, def := serve("a.example"), serve("x.b.example"), serve("default.example")
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--sni", "a.example="+a, "--sni", "*.b.example="+b, "--to", def)
	addr := p.addr(t, 1)
	for _, name := range []string{"a.example", "x.b.example", "default.example"} {
		c := tls.Client(fwdDial(t, addr), &tls.Config{ServerName: name, RootCAs: ca.Pool()})
		// The certificate verifies: the upstream's TLS went through untouched.
		if got := fwdRoundTrip(t, c, ""); got != name {
			t.Errorf("SNI %s reached %q", name, got)
		}
		c.Close()
	}
	fwdRefused(t, fwdDial(t, addr), "\x16\x03\x01\x00\x05hello")
	if r := p.waitLog(t, "connection refused", 1); r["reason"] != "client-hello" {
		t.Errorf("log: %v", r)
	}
}

func TestForwardE2EFailover(t *testing.T) {
	fwdLeakCheck(t)
	down := fwdClosedPort(t)
	up := fwdUpstream(t, nil, testserver.Greet("second"))
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", down, "--to", up, "--dial-timeout", "2s")
	for i := range 3 {
		if got := fwdRoundTrip(t, fwdDial(t, p.addr(t, 1)), ""); got != "second" {
			t.Fatalf("connection %d got %q", i, got)
		}
	}
	if r := p.waitLog(t, "connection closed", 3); r["upstream"] != up {
		t.Errorf("log: %v", r)
	}
}

func TestForwardE2ELimits(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", up, "--max-conns-per-ip", "1")
	addr := p.addr(t, 1)
	first := fwdDial(t, addr)
	if _, err := first.Write([]byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	fwdRefused(t, fwdDial(t, addr), "2")
	if r := p.waitLog(t, "connection refused", 1); r["reason"] != "limit-per-ip" {
		t.Errorf("log: %v", r)
	}
	first.Close()
	p.waitLog(t, "connection closed", 1)
	if got := fwdRoundTrip(t, fwdDial(t, addr), "3"); got != "3" {
		t.Fatalf("after the first closed: %q", got)
	}
}

func TestForwardE2EReload(t *testing.T) {
	fwdLeakCheck(t)
	one := fwdUpstream(t, nil, testserver.Echo)
	two := fwdUpstream(t, nil, testserver.Greet("two"))
	three := fwdUpstream(t, nil, testserver.Greet("three"))
	ca := tlstest.NewCA(t)
	cert1, key1 := ca.Issue(t, "one.example")
	cert2, key2 := ca.Issue(t, "two.example")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	configtest.CopyFile(t, cert1, certFile)
	configtest.CopyFile(t, key1, keyFile)
	// Forwards are identified by their listen address, so "127.0.0.1:0"
	// keeps its listener (and port) across reloads.
	config := func(mainTo, extra string) string {
		return fmt.Sprintf(`
forwards:
  - name: main
    listen: 127.0.0.1:0
    to: [%s]
  - name: tls
    listen: "[::1]:0"
    to: [%s]
    tls:
      cert: %s
      key: %s
%s`, mainTo, two, certFile, keyFile, extra)
	}
	path := fwdWriteConfig(t, config(one, ""))
	p := fwdStart(t, 2, "--config", path)
	addrs := map[string]string{}
	for i := 1; i <= 2; i++ {
		r := p.waitLog(t, "forward listening", i)
		addrs[r["forward"].(string)] = r["addr"].(string)
	}
	served := func(name string) string {
		c := tls.Client(fwdDial(t, addrs["tls"]), &tls.Config{RootCAs: ca.Pool(), ServerName: name})
		defer c.Close()
		if err := c.Handshake(); err != nil {
			return "handshake: " + err.Error()
		}
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served("one.example"); got != "one.example" {
		t.Fatalf("before reload: certificate %q", got)
	}
	old := fwdDial(t, addrs["main"])
	if _, err := old.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(old, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	configtest.CopyFile(t, cert2, certFile)
	configtest.CopyFile(t, key2, keyFile)
	if err := os.WriteFile(path, []byte(config(three, `  - name: added
    listen: 127.0.0.1:0
    to: [`+one+`]
`)), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reloaded", 1)
	if got := fwdRoundTrip(t, fwdDial(t, addrs["main"]), ""); got != "three" {
		t.Errorf("after reload: new connection got %q", got)
	}
	if got := served("two.example"); got != "two.example" {
		t.Errorf("after reload: certificate %q", got)
	}
	added := p.waitLog(t, "forward listening", 3)
	if added["forward"] != "added" {
		t.Errorf("third forward: %v", added)
	}
	if got := fwdRoundTrip(t, fwdDial(t, added["addr"].(string)), "z"); got != "z" {
		t.Errorf("added forward: got %q", got)
	}
	if got := fwdRoundTrip(t, old, "bc"); got != "bc" {
		t.Errorf("connection from before the reload: got %q", got)
	}

	// A bad config is refused and the running one stays.
	if err := os.WriteFile(path, []byte("forwards:\n  - listen: 127.0.0.1:0\n    to: [x]\n    bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	r := p.waitLog(t, "reload failed; keeping the running config", 1)
	if !strings.Contains(r["err"].(string), `forward.yaml:4: forwards[0].bogus: unknown field`) {
		t.Errorf("reload error: %v", r["err"])
	}
	if got := fwdRoundTrip(t, fwdDial(t, addrs["main"]), ""); got != "three" {
		t.Errorf("after a failed reload: got %q", got)
	}
}

// A forward removed by a reload drains for the (new) drain-timeout, then
// its open connections are closed.
func TestForwardE2EReloadRemovedDrainTimeout(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	config := func(drain, extra string) string {
		return fmt.Sprintf("drain_timeout: %s\nforwards:\n  - {name: keep, listen: \"127.0.0.1:0\", to: [%s]}\n%s", drain, up, extra)
	}
	path := fwdWriteConfig(t, config("1h", fmt.Sprintf("  - {name: gone, listen: \"[::1]:0\", to: [%s]}\n", up)))
	p := fwdStart(t, 2, "--config", path)
	var goneAddr string
	for i := 1; i <= 2; i++ {
		if r := p.waitLog(t, "forward listening", i); r["forward"] == "gone" {
			goneAddr = r["addr"].(string)
		}
	}
	c := fwdDial(t, goneAddr)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(config("50ms", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reloaded", 1)
	r := p.waitLog(t, "removed forward: drain timeout reached; its open connections were closed", 1)
	if r["forward"] != "gone" || r["drain_timeout"] != float64(50*time.Millisecond) {
		t.Errorf("log: %v", r)
	}
	if b, err := io.ReadAll(c); len(b) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("old connection after the drain timeout: read %q, %v; want it closed", b, err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func TestForwardE2EDrain(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", up, "--drain-timeout", "1m")
	addr := p.addr(t, 1)
	c := fwdDial(t, addr)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	// The cause reads the same whichever of the process's two signal
	// handlers saw the signal first.
	if r := p.waitLog(t, "draining", 1); r["cause"] != "terminated signal received" {
		t.Errorf("draining: cause %q, want %q", r["cause"], "terminated signal received")
	}
	// No longer accepting (bounded poll: the listener closes right after the log line).
	for i := 0; ; i++ {
		nc, err := net.DialTimeout("tcp", addr, fwdWait)
		if err != nil {
			break
		}
		nc.Close()
		if i == 1000 {
			t.Fatal("still accepting while draining")
		}
		<-time.After(time.Millisecond)
	}
	if got := fwdRoundTrip(t, c, "bc"); got != "bc" {
		t.Fatalf("draining connection got %q", got)
	}
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code %d after drain", code)
	}
	p.waitLog(t, "stopped", 1)
}

func TestForwardE2EDrainDeadline(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", up, "--drain-timeout", "200ms")
	c := fwdDial(t, p.addr(t, 1))
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	p.waitLog(t, "drain deadline reached; open connections were closed", 1)
	if b, err := io.ReadAll(c); len(b) > 0 {
		t.Errorf("after the deadline read %q, %v", b, err)
	}
}

func TestForwardE2EBadInput(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	dir := t.TempDir()
	bad := func(name, text string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(text), 0o600)
		return path
	}
	unknown := bad("unknown.yaml", "forwards:\n  - listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    tls-crt: x\n")
	kebab := bad("kebab.yaml", "forwards:\n  - listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    max-conns: 3\n    tls-cert: x\n")
	cidr := bad("cidr.yaml", "forwards:\n  - listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    accept_proxy: true\n    trusted_proxy:\n      - 10.0.0.0/33\n")
	missingCert := bad("cert.yaml", "forwards:\n  - name: web\n    listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    tls:\n      cert: /nonexistent/cert.pem\n      key: "+key+"\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--bogus"}, "-bogus"},
		{[]string{"forward", "--to", "127.0.0.1:1"}, "--listen"},
		{[]string{"forward", "--listen", "127.0.0.1", "--to", "127.0.0.1:1"}, "flag --listen: address \"127.0.0.1\""},
		{[]string{"forward", "--listen", "127.0.0.1:0"}, "flag --to: no upstream given"},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--dial-timeout", "soon"}, `invalid value "soon" for flag -dial-timeout: invalid duration`},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--send-proxy", "v3"}, "flag --send-proxy"},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--balance", "random"}, "flag --balance"},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--accept-proxy", "--trusted-proxy", "not-a-cidr"}, "flag --trusted-proxy"},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--tls-cert", "/nonexistent.pem", "--tls-key", key}, "flag --tls-cert: open /nonexistent.pem"},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--tls-cert", key, "--tls-key", cert}, "flag --tls-cert"},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--log-format", "xml"}, "log-format"},
		{[]string{"forward", "--config", unknown}, unknown + `:4: forwards[0].tls-crt: unknown field (want one of: accept_proxy, backoff,`},
		{[]string{"forward", "--config", kebab}, kebab + ":4: forwards[0].max-conns: renamed to max_conns\n" + kebab + ":5: forwards[0].tls-cert: renamed to tls.cert"},
		{[]string{"forward", "--config", cidr}, cidr + ":6: forwards[0].trusted_proxy[0]: \"10.0.0.0/33\" is not an IP address or CIDR prefix"},
		{[]string{"forward", "--config", missingCert}, missingCert + ":6: forwards[0].tls.cert: open /nonexistent/cert.pem"},
		{[]string{"forward", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--to-ca", cert}, "flag --to-tls: not set, but --to-ca"},
		{[]string{"forward", "--config", unknown, "--to", "127.0.0.1:1"}, "flag --to: not allowed with --config"},
		{[]string{"forward", "--config", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file"},
		{[]string{"check-config", missingCert}, missingCert + ":6: forwards[0].tls.cert: open"},
		{[]string{"check-config", kebab}, kebab + ":4: forwards[0].max-conns: renamed to max_conns"},
	} {
		cmd := exec.Command(fwdBin, tc.args...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("pipegate %s: exit %d (%v), output %q; want exit 2 and %q", strings.Join(tc.args, " "), code, err, out, tc.want)
		}
	}
	good := bad("good.yaml", "tls_on_goroutines: true\nforwards:\n  - listen: 127.0.0.1:0\n    to: [127.0.0.1:1]\n    go_accept: true\n    tls:\n      cert: "+cert+"\n      key: "+key+"\n")
	if out, err := exec.Command(fwdBin, "check-config", good).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("check-config on a good file: %v, %s", err, out)
	}
}

// TestForwardE2ECurl runs a real TLS client, curl, through the forwarder
// terminating TLS in front of an HTTP server.
func TestForwardE2ECurl(t *testing.T) {
	fwdLeakCheck(t)
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("PIPEGATE_REQUIRE_REAL") == "1" {
			t.Fatal("curl not installed (PIPEGATE_REQUIRE_REAL=1)")
		}
		t.Skip("curl not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(fwdHello)}
	served := make(chan error, 1)
	go fwdServeHTTP(hs, ln, served)
	t.Cleanup(func() { hs.Close(); <-served })
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "front.example")
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", ln.Addr().String(), "--tls-cert", cert, "--tls-key", key)
	_, port, _ := net.SplitHostPort(p.addr(t, 1))
	ctx, cancel := context.WithTimeout(context.Background(), fwdWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "--cacert", ca.CertFile(t),
		"--resolve", "front.example:"+port+":127.0.0.1", "https://front.example:"+port+"/hi").CombinedOutput()
	if err != nil || string(out) != "hello from /hi" {
		t.Fatalf("curl: %v: %s", err, out)
	}
	if r := p.waitLog(t, "connection closed", 1); r["sni"] != "front.example" {
		t.Errorf("log: %v", r)
	}
}

func fwdHello(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from "+r.URL.Path) }

func fwdServeHTTP(hs *http.Server, ln net.Listener, done chan<- error) { done <- hs.Serve(ln) }

func TestForwardE2EIdleTimeout(t *testing.T) {
	fwdLeakCheck(t)
	up := fwdUpstream(t, nil, testserver.Echo)
	p := fwdStart(t, 1, "--listen", "127.0.0.1:0", "--to", up, "--idle-timeout", "100ms", "--tcp-keepalive", "30s")
	c := fwdDial(t, p.addr(t, 1))
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// Silent from here: the forwarder closes the connection by itself.
	if b, err := io.ReadAll(c); len(b) > 0 {
		t.Fatalf("idle connection read %q, %v", b, err)
	}
	if r := p.waitLog(t, "connection closed", 1); r["reason"] != "idle-timeout" {
		t.Errorf("log: %v", r)
	}
}
