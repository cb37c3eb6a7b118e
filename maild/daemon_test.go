package maild

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/testenv"
)

// logBuffer collects a daemon's log and lets a test wait for a line.
type logBuffer struct {
	mu     sync.Mutex
	b      strings.Builder
	change chan struct{} // closed and renewed at each write
}

func newLogBuffer() *logBuffer { return &logBuffer{change: make(chan struct{})} }

// newTestDaemon loads the config at path for command and makes its
// daemon, logging to the returned buffer.
func newTestDaemon(t *testing.T, path, command string) (*Daemon, *logBuffer) {
	t.Helper()
	s, err := Load(path, command, testProtocols)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogBuffer()
	d, err := New(s, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d, logs
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.change)
	l.change = make(chan struct{})
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wait returns once the log holds n lines with msg, failing the test
// after 10s or when Run returned first.
func (l *logBuffer) wait(t *testing.T, msg string, n int, done <-chan error) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		got, change := strings.Count(l.b.String(), msg), l.change
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-change:
		case err := <-done:
			t.Fatalf("Run returned %v before %d× %q:\n%s", err, n, msg, l.String())
		case <-timeout:
			t.Fatalf("no %d× %q in the log:\n%s", n, msg, l.String())
		}
	}
}

// TestDaemonRunReloadDrain runs a daemon with an IMAP and a POP3 listener:
// both greet, /healthz is ok, Reload re-reads routes and certificate and
// reports a broken routes file without dropping the routes, and cancelling
// the context drains and stops it.
func TestDaemonRunReloadDrain(t *testing.T) {
	imapAddr, pop3Addr, metrics := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	path := configtest.WriteConfig(t, fmt.Sprintf(`listen:
  - addr: %s
  - addr: %s
    protocol: pop3
    tls: true
tls:
  cert: server.crt
  key: server.key
routes_file: routes.yaml
metrics_addr: %s
drain_timeout: 5s
pop3:
  greeting: pop3 here
`, imapAddr, pop3Addr, metrics))
	d, logs := newTestDaemon(t, path, CommandMail)
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go runDaemon(ctx, d, done)
	logs.wait(t, "mail: listening", 2, done)
	logs.wait(t, "mail: metrics listening", 1, done)

	c, err := net.Dial("tcp", imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || !strings.HasPrefix(line, "* OK") {
		t.Errorf("IMAP greeting %q, %v", line, err)
	}
	if code, body := get(t, "http://"+metrics+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, "http://"+metrics+"/affinity?user=alice"); code != http.StatusNotFound || !strings.Contains(body, "no pools") {
		t.Errorf("/affinity without pools: %d %q; want 404 saying so", code, body)
	}

	if err := d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	logs.wait(t, "mail: routes reloaded", 1, done)
	logs.wait(t, "mail: certificate reloaded", 1, done)
	if strings.Contains(logs.String(), "config file") {
		t.Errorf("a reload with the config file unchanged warns:\n%s", logs.String())
	}
	// A change of the file itself is not applied, and the log says so.
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, path, strings.Replace(string(cfg), "pop3 here", "pop3 there", 1)+"max_login_failures: 5\n")
	if err := d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	logs.wait(t, "mail: config file changed since start", 1, done)
	if !strings.Contains(logs.String(), "keys=\"[pop3 max_login_failures]\"") {
		t.Errorf("the warning does not name the keys changed:\n%s", logs.String())
	}
	routes := filepath.Join(filepath.Dir(path), "routes.yaml")
	writeTestFile(t, routes, "routes:\n  - account: x@y\n    backend: ftp://h:1\n")
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "routes.yaml:3") {
		t.Errorf("reload of a broken routes file: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, w := range []string{"mail: tls certificate", "cert=\"ECDSA", "mail: draining", "protocol=pop3", "mail: stopped"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
}

// TestDaemonListenError: an address that cannot be listened on is an
// error naming the field, and nothing is left listening.
func TestDaemonListenError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := testenv.FreeAddr(t)
	path := configtest.WriteConfig(t, fmt.Sprintf("listen:\n  - addr: %s\n  - addr: %s\nroutes_file: routes.yaml\n", free, busy.Addr()))
	d, logs := newTestDaemon(t, path, CommandIMAP)
	defer d.Close()
	err = d.Run(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "listen[1].addr: ") {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(logs.String(), "imap: listen") {
		t.Errorf("log:\n%s", logs.String())
	}
	l, err := net.Listen("tcp", free) // the first listener was closed
	if err != nil {
		t.Fatalf("listen[0] left open: %v", err)
	}
	l.Close()
}

// runDaemon is the goroutine running a test's daemon.
func runDaemon(ctx context.Context, d *Daemon, done chan<- error) { done <- d.Run(ctx) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestDaemonPoolsNotJoined: with the pools' Redis unreachable, a daemon
// taking sessions over (TakingOver, a binary upgrade) fails before it
// reports serving, so that the old process keeps its sessions; one that
// starts afresh warns and serves.
func TestDaemonPoolsNotJoined(t *testing.T) {
	dead := testenv.FreeAddr(t) // nothing listens: Redis unreachable
	imapAddr := testenv.FreeAddr(t)
	cfg := strings.Replace(poolsConfig, "127.0.0.1:6379", dead, 1)
	cfg = strings.Replace(cfg, "  - addr: 127.0.0.1:1143\n  - addr: 127.0.0.1:1993\n    tls: true\n", "  - addr: "+imapAddr+"\n", 1)
	for _, takingOver := range []bool{true, false} {
		path := configtest.WriteConfig(t, cfg)
		d, logs := newTestDaemon(t, path, CommandIMAP)
		d.joinWait = 100 * time.Millisecond
		served := make(chan struct{})
		d.OnServing = func() { close(served) }
		if takingOver {
			d.TakingOver = true
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go runDaemon(ctx, d, done)
		if takingOver {
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "not joined") {
					t.Errorf("taking over: Run = %v, want a pools-not-joined error", err)
				}
			case <-served:
				t.Error("taking over: reported serving with its pools not joined")
				cancel()
				<-done
			}
			if l, err := net.Listen("tcp", imapAddr); err != nil {
				t.Errorf("the listener is still open after the failure: %v", err)
			} else {
				l.Close()
			}
		} else {
			select {
			case <-served:
			case err := <-done:
				t.Fatalf("fresh start: Run = %v before serving", err)
			}
			logs.wait(t, "pools not joined yet", 1, done)
			cancel()
			if err := <-done; err != nil {
				t.Errorf("fresh start: Run = %v", err)
			}
		}
		cancel()
		d.Close()
	}
}
