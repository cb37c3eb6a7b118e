package sieve_test

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
	"github.com/pipegate/pipegate/sieve"
)

// loginsCounted is pipegate_sieve_logins_total{result}, all backends.
func loginsCounted(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	return gatewaytest.Counted(t, reg, "pipegate_sieve_logins_total", "result", result)
}

// TestBackendBrokenDialogue: a backend that breaks the login dialogue
// makes the login unavailable: the client gets NO (TRYLATER) as soon as
// the dialogue is known to be broken (at the BackendTimeout for a silent
// backend; else at once, or the client's own deadline fails the test), the
// failure is counted, and no credentials went to a backend that was to
// be on TLS.
func TestBackendBrokenDialogue(t *testing.T) {
	pki := newPKI(t)
	const caps = "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN\"\r\n\"STARTTLS\"\r\n\"XCLIENT\"\r\nOK\r\n"
	for _, tc := range []struct {
		name    string
		scheme  string
		timeout time.Duration // BackendTimeout, long unless the case waits for it
		script  func(c net.Conn, br *bufio.Reader)
	}{
		{"no greeting", "sieve", 100 * time.Millisecond, func(c net.Conn, br *bufio.Reader) {}},
		{"greeting over the limit without a line end", "sieve", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "\"IMPLEMENTATION\" \""+strings.Repeat("x", 1<<20))
		}},
		{"BYE greeting", "sieve", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "\"SASL\" \"PLAIN\"\r\nBYE \"not today\"\r\n")
		}},
		{"capability literal of 10 KiB", "sieve", time.Hour, func(c net.Conn, br *bufio.Reader) {
			// Refused once past the bound, not read as long as the
			// backend sends: nothing ends this greeting.
			_, _ = io.WriteString(c, strings.Repeat("\"X\" {10240}\r\n"+strings.Repeat("x", 10240)+"\r\n", 20))
		}},
		{"XCLIENT answered BYE", "sieve", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, caps)
			_, _ = io.WriteString(c, "BYE \"no\"\r\n")
		}},
		{"challenges for ever", "sieve", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "\"SASL\" \"PLAIN\"\r\nOK\r\n")
			for range 100 {
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
				_, _ = io.WriteString(c, "\"\"\r\n")
			}
		}},
		{"closed during the login", "sieve", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, "\"SASL\" \"PLAIN\"\r\nOK\r\n")
			c.Close()
		}},
		{"STARTTLS not offered", "sieve+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			_, _ = io.WriteString(c, "\"SASL\" \"PLAIN\"\r\nOK\r\n")
		}},
		{"STARTTLS refused", "sieve+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, caps)
			_, _ = io.WriteString(c, "NO \"not today\"\r\n")
		}},
		{"STARTTLS followed by plaintext", "sieve+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, caps)
			_, _ = io.WriteString(c, "OK\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n")
		}},
		{"STARTTLS without TLS", "sieve+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, caps)
			_, _ = io.WriteString(c, "OK\r\n")
			if _, err := br.ReadByte(); err != nil { // the ClientHello has come
				return
			}
			_, _ = io.WriteString(c, "\"SASL\" \"PLAIN\"\r\nOK\r\n")
		}},
		{"STARTTLS with a certificate for another name", "sieve+starttls", time.Hour, func(c net.Conn, br *bufio.Reader) {
			gatewaytest.Converse(c, br, caps)
			_, _ = io.WriteString(c, "OK\r\n")
			cfg := &tls.Config{Certificates: []tls.Certificate{pki.ca.IssueCert(t, "other.test")}}
			_ = tls.Server(c, cfg).Handshake()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1000)
			addr := gatewaytest.ScriptedBackend(t, got, tc.script)
			reg := prometheus.NewRegistry()
			p := startProxy(t, &sieve.Server{Server: gateway.Server{
				Router:             newRouter(t, tc.scheme+"://"+addr+"?server_name=localhost&client_addr=xclient"),
				BackendTLS:         &tls.Config{RootCAs: pki.ca.Pool()},
				BackendTimeout:     tc.timeout,
				AllowPlaintextAuth: true,
				Metrics:            sieve.NewMetrics(reg),
			}})
			c, _ := dial(t, "", p)
			c.send("AUTHENTICATE \"PLAIN\" \"" + b64("\x00alice@a.test\x00secret") + "\"\r\n")
			if l := c.line(); l != "NO (TRYLATER) \""+gateway.TextUnavailable+"\"\r\n" {
				t.Errorf("login: %q", l)
			}
			if n := loginsCounted(t, reg, "unavailable"); n != 1 {
				t.Errorf("logins counted unavailable: %v, want 1", n)
			}
			c.c.Close()
			for len(got) > 0 {
				if l := <-got; tc.scheme == "sieve+starttls" && strings.Contains(l, "AUTHENTICATE") {
					t.Errorf("the backend got %q without TLS", l)
				}
			}
		})
	}
}

// TestBackendDataAfterLogin: what a backend sends after its OK to the
// login reaches the client after the client's OK, in order and as sent.
func TestBackendDataAfterLogin(t *testing.T) {
	addr := gatewaytest.ScriptedBackend(t, make(chan string, 100), func(c net.Conn, br *bufio.Reader) {
		gatewaytest.Converse(c, br, "\"SASL\" \"PLAIN\"\r\nOK\r\n")
		_, _ = io.WriteString(c, "OK \"Logged in\"\r\nOK \"extra\"\r\n")
	})
	p := startProxy(t, &sieve.Server{Server: gateway.Server{
		Router: newRouter(t, "sieve://"+addr+"?client_addr=none"), AllowPlaintextAuth: true,
	}})
	c, _ := dial(t, "", p)
	c.send("AUTHENTICATE \"PLAIN\" \"" + b64("\x00alice@a.test\x00secret") + "\"\r\n")
	if l := c.line(); l != "OK \"Logged in\"\r\n" {
		t.Errorf("login: %q", l)
	}
	if l := c.line(); l != "OK \"extra\"\r\n" {
		t.Errorf("after the OK: %q", l)
	}
}
