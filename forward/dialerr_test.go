package forward

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testserver"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestDialErrorNamesDialOnce (from the soak run): when every upstream
// refuses, the "connection refused" line reads the same on both accept
// paths, "dial ADDR: connect: connection refused", naming the dial once
// (the Go path said "dial ADDR: dial tcp ADDR: connect: ...").
func TestDialErrorNamesDialOnce(t *testing.T) {
	bothAcceptPaths(t, testDialErrorNamesDialOnce)
}

func testDialErrorNamesDialOnce(t *testing.T, startServer serverStarter) {
	up := closedPort(t)
	_, addr, rec, _ := startServer(t, Config{Name: "down", Upstreams: []string{up}})
	refused(t, dial(t, addr), "x")
	r := rec.wait(t, "connection refused", 1)
	if want := "dial " + up + ": "; !strings.HasPrefix(r["err"], want) || strings.Count(r["err"], "dial") != 1 {
		t.Errorf("err = %q; want %q and the rest of the error, saying dial once", r["err"], want+"connect: connection refused")
	}
	if r["level"] != "WARN" {
		t.Errorf("level %q, want WARN: every upstream failing is the operator's business", r["level"])
	}
}

// TestClientFailuresAtInfo: a client that fails its own TLS handshake or
// sends no ClientHello to an SNI forward is logged at INFO, not WARN (a
// scanner would flood a log watched for warnings); a route the client
// asks for and nobody serves stays WARN.
func TestClientFailuresAtInfo(t *testing.T) {
	ca := tlstest.NewCA(t)
	up := startUpstream(t, nil, testserver.Echo)
	_, addr, rec, _ := startServer(t, Config{Name: "tls", Upstreams: []string{up},
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1")}}})
	refused(t, dial(t, addr), "GET / HTTP/1.0\r\n\r\n")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "tls-handshake" || r["level"] != "INFO" {
		t.Errorf("a client that is not TLS on a TLS forward: %v, want reason tls-handshake at INFO", r)
	}
	_, addr, rec, _ = startServer(t, Config{Name: "sni", Routes: []Route{{ServerName: "a.example", Upstreams: []string{up}}}})
	refused(t, dial(t, addr), "GET / HTTP/1.0\r\n\r\n")
	if r := rec.wait(t, "connection refused", 1); r["reason"] != "client-hello" || r["level"] != "INFO" {
		t.Errorf("no ClientHello on an SNI forward: %v, want reason client-hello at INFO", r)
	}
	c := tls.Client(dial(t, addr), &tls.Config{ServerName: "other.example"})
	c.SetDeadline(time.Now().Add(testTimeout))
	if err := c.Handshake(); err == nil {
		t.Fatal("handshake through a route-less name succeeded")
	}
	if r := rec.wait(t, "connection refused", 2); r["reason"] != "no-route" || r["level"] != "WARN" {
		t.Errorf("a name no route serves: %v, want reason no-route at WARN", r)
	}
}
