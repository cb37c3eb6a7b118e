package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/demo"
	"github.com/pipegate/pipegate/internal/configtest"
	"github.com/pipegate/pipegate/internal/testenv"
)

func TestRunIMAPUsage(t *testing.T) {
	var out, errOut strings.Builder
	if code := runIMAP(context.Background(), nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
		t.Fatalf("no --config: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	path := configtest.WriteConfig(t, configtest.IMAPIssue+"bogus: 1\n")
	if code := runIMAP(context.Background(), []string{"--config", path}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), path+":11: bogus: unknown field") {
		t.Fatalf("bad config: exit %d, stderr %q", code, errOut.String())
	}
}

// syncBuffer is a strings.Builder safe for the daemon's log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunIMAPInProcess runs `pipegate imap` in-process in front of the
// demo's in-memory backends, logs in on both listeners and stops it by
// cancelling its context (as SIGTERM does).
func TestRunIMAPInProcess(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // other tests of the package may leave theirs
	d, err := demo.Start(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	plain, tlsAddr, metrics := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	path := configtest.WriteConfig(t, fmt.Sprintf(`listen:
  - addr: %s
  - addr: %s
    tls: true
tls:
  cert: server.crt
  key: server.key
routes_file: routes.yaml
allow_plaintext_auth: true
metrics_addr: %s
drain_timeout: 5s
`, plain, tlsAddr, metrics))
	writeTestFile(t, filepath.Join(filepath.Dir(path), "routes.yaml"),
		fmt.Sprintf("routes:\n  - domain: b.test\n    backend: imap://%s\ndefault: imap://%s\n", d.Backends[1].IMAP, d.Backends[0].IMAP))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- runIMAP(ctx, []string{"--config", path}, &stderr, &stderr) }()
	for _, addr := range []string{plain, tlsAddr, metrics} {
		waitDial(t, addr, done, &stderr)
	}
	for _, a := range d.Accounts {
		for _, implicit := range []bool{false, true} {
			var c *imapclient.Client
			if implicit {
				c, err = imapclient.DialTLS(tlsAddr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
			} else {
				c, err = imapclient.DialInsecure(plain, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Login(a.User, a.Password).Wait(); err != nil {
				t.Fatalf("%s: %v", a.User, err)
			}
			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil || int(sel.NumMessages) != len(a.Subjects) {
				t.Fatalf("%s: select %v, %+v", a.User, err, sel)
			}
			c.Logout().Wait()
			c.Close()
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	if log := stderr.String(); !strings.Contains(log, "imap: stopped") || strings.Contains(log, "alice-pw") {
		t.Fatalf("log:\n%s", log)
	}
}

func waitDial(t *testing.T, addr string, done <-chan int, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case code := <-done:
			t.Fatalf("exited with %d before listening on %s:\n%s", code, addr, log.String())
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s:\n%s", addr, log.String())
		}
	}
}
