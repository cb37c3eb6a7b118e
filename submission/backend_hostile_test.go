package submission_test

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
	"github.com/pipegate/pipegate/submission"
)

// loginsCounted is pipegate_submission_logins_total{result}, all backends.
func loginsCounted(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	return gatewaytest.Counted(t, reg, "pipegate_submission_logins_total", "result", result)
}

// TestBackendBrokenDialogue: a backend that breaks the login dialogue
// makes the login unavailable: the client gets 454 4.7.0 as soon as the
// dialogue is known to be broken (at the BackendTimeout for a silent
// backend; else at once, or the client's own deadline fails the test), the
// failure is counted, and no credentials went to a backend that was to be
// on TLS.
func TestBackendBrokenDialogue(t *testing.T) {
	pki := newPKI(t)
	const ehlo = "250-fake\r\n250-AUTH PLAIN\r\n250-STARTTLS\r\n250 XCLIENT ADDR PORT HELO PROTO\r\n"
	for _, tc := range []struct {
		name    string
		scheme  string
		timeout time.Duration // BackendTimeout, long unless the case waits for it
		script  func(c net.Conn, br *bufio.Reader)
	}{
		{"no greeting", "submission", 100 * time.Millisecond, func(c net.Conn, br *bufio.Reader) {}},
		{"greeting over the limit without a line end", "submission", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "220 "+strings.Repeat("x", 1<<20))
		}},
		{"554 greeting", "submission", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "554 5.3.2 not today\r\n")
		}},
		{"endless greeting", "submission", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, strings.Repeat("220-more\r\n", 1000))
		}},
		{"XCLIENT answered with a greeting over the limit", "submission", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n", ehlo)
			_, _ = io.WriteString(c, "220 "+strings.Repeat("x", 1<<20))
		}},
		{"challenges for ever", "submission", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n")
			_, _ = io.WriteString(c, "250-fake\r\n250 AUTH PLAIN\r\n")
			for range 100 {
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
				_, _ = io.WriteString(c, "334 \r\n")
			}
		}},
		{"closed during AUTH", "submission", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n", "250-fake\r\n250 AUTH PLAIN\r\n")
			c.Close()
		}},
		{"STARTTLS not offered", "submission+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n")
			_, _ = io.WriteString(c, "250-fake\r\n250 AUTH PLAIN\r\n")
		}},
		{"STARTTLS refused", "submission+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n", ehlo)
			_, _ = io.WriteString(c, "454 4.7.0 TLS not available\r\n")
		}},
		{"STARTTLS followed by plaintext", "submission+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n", ehlo)
			_, _ = io.WriteString(c, "220 go ahead\r\n250-fake\r\n250 AUTH PLAIN\r\n")
		}},
		{"STARTTLS without TLS", "submission+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n", ehlo)
			_, _ = io.WriteString(c, "220 go ahead\r\n")
			if _, err := br.ReadByte(); err != nil { // the ClientHello has come
				return
			}
			_, _ = io.WriteString(c, "250-fake\r\n250 AUTH PLAIN\r\n")
		}},
		{"STARTTLS with a certificate for another name", "submission+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "220 fake\r\n", ehlo)
			_, _ = io.WriteString(c, "220 go ahead\r\n")
			cfg := &tls.Config{Certificates: []tls.Certificate{pki.ca.IssueCert(t, "other.test")}}
			_ = tls.Server(c, cfg).Handshake()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1000)
			addr := gatewaytest.ScriptedBackend(t, got, tc.script)
			reg := prometheus.NewRegistry()
			ca := "none"
			if strings.HasPrefix(tc.name, "XCLIENT") {
				ca = "xclient"
			}
			p := startProxy(t, &submission.Server{Server: gateway.Server{
				Router:             newRoutes(t, map[string][]string{"@a.test": {tc.scheme + "://" + addr + "?server_name=localhost&client_addr=" + ca}}),
				BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
				BackendTimeout:     tc.timeout,
				AllowPlaintextAuth: true,
				Metrics:            submission.NewMetrics(reg),
			}})
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			c.send("EHLO client.test\r\n")
			c.reply()
			c.send("AUTH PLAIN " + plain("", "alice@a.test", "secret") + "\r\n")
			if l := c.reply(); l != "454 4.7.0 Temporary authentication failure" {
				t.Errorf("login: %q", l)
			}
			if n := loginsCounted(t, reg, "unavailable"); n != 1 {
				t.Errorf("logins counted unavailable: %v, want 1", n)
			}
			c.conn.Close()
			for len(got) > 0 {
				if l := <-got; tc.scheme == "submission+starttls" && strings.Contains(l, "AUTH") {
					t.Errorf("the backend got %q without TLS", l)
				}
			}
		})
	}
}

// TestBackendDataAfterLogin: what a backend sends after its 235 reaches
// the client after the client's 235, in order and as sent.
func TestBackendDataAfterLogin(t *testing.T) {
	addr := gatewaytest.ScriptedBackend(t, make(chan string, 100), func(c net.Conn, br *bufio.Reader) {
		gatewaytest.Converse(c, br, "220 fake\r\n", "250-fake\r\n250 AUTH PLAIN\r\n")
		_, _ = io.WriteString(c, "235 2.7.0 Logged in\r\n421 4.3.2 going down\r\n")
	})
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + addr + "?client_addr=none"}}),
		AllowPlaintextAuth: true,
	}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.send("EHLO client.test\r\n")
	c.reply()
	c.send("AUTH PLAIN " + plain("", "alice@a.test", "secret") + "\r\n")
	if l := c.reply(); l != "235 2.7.0 Logged in" {
		t.Errorf("login: %q", l)
	}
	if l := c.reply(); l != "421 4.3.2 going down" {
		t.Errorf("after the 235: %q", l)
	}
}

// TestBackendOKBeforeCredentials: a backend that says 235 to an AUTH whose
// credentials it has not had (AUTH LOGIN's name and password, or a long
// PLAIN sent after its 334) has not checked them: a broken backend, not a
// login.
func TestBackendOKBeforeCredentials(t *testing.T) {
	for _, tc := range []struct{ name, mechs, pass string }{
		{"AUTH LOGIN", "LOGIN", "secret"},
		{"AUTH PLAIN after 334", "PLAIN", strings.Repeat("s", 500)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := gatewaytest.ScriptedBackend(t, make(chan string, 100), func(c net.Conn, br *bufio.Reader) {
				gatewaytest.Converse(c, br, "220 fake\r\n", "250-fake\r\n250 AUTH "+tc.mechs+"\r\n")
				_, _ = io.WriteString(c, "235 2.7.0 Logged in\r\n")
			})
			p := startProxy(t, &submission.Server{Server: gateway.Server{
				Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + addr + "?client_addr=none"}}),
				AllowPlaintextAuth: true,
			}})
			c := dialRaw(t, "127.0.0.1", p.addr)
			c.reply()
			c.send("EHLO client.test\r\n")
			c.reply()
			c.send("AUTH PLAIN " + plain("", "alice@a.test", tc.pass) + "\r\n")
			if l := c.reply(); l != "454 4.7.0 Temporary authentication failure" {
				t.Errorf("login: %q", l)
			}
		})
	}
}
