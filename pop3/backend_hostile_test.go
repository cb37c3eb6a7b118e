package pop3_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/gatewaytest"
	"github.com/pipegate/pipegate/pop3"
)

// loginsCounted is pipegate_pop3_logins_total{result}, all backends.
func loginsCounted(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	return gatewaytest.Counted(t, reg, "pipegate_pop3_logins_total", "result", result)
}

// TestBackendBrokenDialogue: a backend that breaks the login dialogue
// makes the login unavailable: the client gets -ERR [SYS/TEMP] as soon as
// the dialogue is known to be broken (at the BackendTimeout for a silent
// backend; else at once, or the client's own deadline fails the test), the
// failure is counted (not as the client's failed login), and no password
// went to a backend that was to be on TLS.
func TestBackendBrokenDialogue(t *testing.T) {
	pki := newPKI(t)
	for _, tc := range []struct {
		name    string
		scheme  string
		timeout time.Duration // BackendTimeout, long unless the case waits for it
		script  func(c net.Conn, br *bufio.Reader)
	}{
		{"no greeting", "pop3", 100 * time.Millisecond, func(c net.Conn, br *bufio.Reader) {}},
		{"greeting over the limit without a line end", "pop3", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "+OK "+strings.Repeat("x", 1<<20))
		}},
		{"-ERR greeting", "pop3", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "-ERR not today\r\n")
		}},
		{"CAPA over 100 KiB", "pop3", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "+OK fake\r\n")
			// 256 lines of 1000 octets, no end: refused once past the
			// bound, not read as long as the backend sends.
			_, _ = io.WriteString(c, "+OK\r\n"+strings.Repeat("X"+strings.Repeat("x", 997)+"\r\n", 256))
		}},
		{"continuation for USER", "pop3", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "+OK fake\r\n", "+OK\r\nUSER\r\n.\r\n")
			_, _ = io.WriteString(c, "+ \r\n")
		}},
		{"continuations for ever", "pop3", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "+OK fake\r\n")
			_, _ = io.WriteString(c, "+OK\r\nSASL PLAIN\r\n.\r\n")
			for range 100 {
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
				_, _ = io.WriteString(c, "+ \r\n")
			}
		}},
		{"closed during the login", "pop3", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "+OK fake\r\n", "+OK\r\nSASL PLAIN\r\n.\r\n")
			c.Close()
		}},
		{"STLS followed by plaintext", "pop3+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "+OK fake\r\n")
			_, _ = io.WriteString(c, "+OK Begin TLS\r\n+OK\r\nSASL PLAIN\r\n.\r\n")
		}},
		{"STLS without TLS", "pop3+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "+OK fake\r\n")
			_, _ = io.WriteString(c, "+OK Begin TLS\r\n")
			if _, err := br.ReadByte(); err != nil { // the ClientHello has come
				return
			}
			_, _ = io.WriteString(c, "+OK\r\nSASL PLAIN\r\n.\r\n")
		}},
		{"STLS with a certificate for another name", "pop3+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "+OK fake\r\n")
			_, _ = io.WriteString(c, "+OK Begin TLS\r\n")
			cfg := &tls.Config{Certificates: []tls.Certificate{pki.ca.IssueCert(t, "other.test")}}
			_ = tls.Server(c, cfg).Handshake()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1000)
			addr := gatewaytest.ScriptedBackend(t, got, tc.script)
			reg := prometheus.NewRegistry()
			p := startProxy(t, &pop3.Server{Server: gateway.Server{
				Router:             routes(t, map[string][]string{"@a.test": {tc.scheme + "://" + addr + "?server_name=localhost&client_addr=none"}}),
				BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
				BackendTimeout:     tc.timeout,
				AllowPlaintextAuth: true,
				Metrics:            pop3.NewMetrics(reg),
			}})
			c := dial(t, "", p.addr)
			c.cmd("USER alice@a.test")
			if l := c.cmd("PASS secret"); l != "-ERR [SYS/TEMP] "+gateway.TextUnavailable {
				t.Errorf("login: %q", l)
			}
			if n := loginsCounted(t, reg, "unavailable"); n != 1 {
				t.Errorf("logins counted unavailable: %v, want 1", n)
			}
			if n := loginsCounted(t, reg, "failed"); n != 0 {
				t.Errorf("logins counted failed: %v, want 0", n)
			}
			c.conn.Close()
			for len(got) > 0 {
				l := <-got
				if tc.scheme == "pop3+starttls" && (strings.Contains(l, "PASS") || strings.Contains(l, "AUTH")) {
					t.Errorf("the backend got %q without TLS", l)
				}
			}
		})
	}
}

// TestBackendDataAfterLogin: what a backend sends after its +OK to the
// login reaches the client after the client's +OK, in order and as sent.
func TestBackendDataAfterLogin(t *testing.T) {
	addr := gatewaytest.ScriptedBackend(t, make(chan string, 100), func(c net.Conn, br *bufio.Reader) {
		gatewaytest.Converse(c, br, "+OK fake\r\n", "+OK\r\nSASL PLAIN\r\n.\r\n")
		_, _ = io.WriteString(c, "+OK Logged in.\r\n+OK 2 320\r\n")
	})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + addr + "?client_addr=none"}}),
		AllowPlaintextAuth: true,
	}})
	c := dial(t, "", p.addr)
	c.cmd("USER alice@a.test")
	if l := c.cmd("PASS secret"); l != "+OK Logged in." {
		t.Errorf("login: %q", l)
	}
	if l := c.line(); l != "+OK 2 320" {
		t.Errorf("after the +OK: %q", l)
	}
}

// TestBackendOKBeforeCredentials: a backend that says +OK to an AUTH whose
// credentials it has not had (a long one, sent after its "+") has not
// checked them: a broken backend, not a login.
func TestBackendOKBeforeCredentials(t *testing.T) {
	addr := gatewaytest.ScriptedBackend(t, make(chan string, 100), func(c net.Conn, br *bufio.Reader) {
		gatewaytest.Converse(c, br, "+OK fake\r\n", "+OK\r\nSASL PLAIN\r\n.\r\n")
		_, _ = io.WriteString(c, "+OK Logged in.\r\n")
	})
	p := startProxy(t, &pop3.Server{Server: gateway.Server{
		Router:             routes(t, map[string][]string{"@a.test": {"pop3://" + addr + "?client_addr=none"}}),
		AllowPlaintextAuth: true,
	}})
	c := dial(t, "", p.addr)
	c.cmd("USER alice@a.test")
	// Past 255 octets in AUTH PLAIN's line: sent after the backend's "+".
	if l := c.cmd("PASS " + strings.Repeat("s", 300)); l != "-ERR [SYS/TEMP] "+gateway.TextUnavailable {
		t.Errorf("login: %q", l)
	}
}
