package imap_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
)

// BenchmarkLogin: connect, LOGIN, LOGOUT through the proxy to an
// in-memory backend, one client at a time. BenchmarkLoginDirect is the
// same against the backend itself.
func BenchmarkLogin(b *testing.B)       { benchLogin(b, true) }
func BenchmarkLoginDirect(b *testing.B) { benchLogin(b, false) }

func benchLogin(b *testing.B, viaProxy bool) {
	be := startBackend(b, map[string]string{"alice@a.test": "apass"}, backendOpts{})
	addr := be.addr
	if viaProxy {
		p := startProxy(b, &imap.Server{
			Server: gateway.Server{
				Router:             routes(b, map[string][]string{"alice@a.test": {plainURL(be.addr)}}),
				AllowPlaintextAuth: true,
				Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
			},
		})
		addr = p.addr
	}
	loginLoop(b, addr)
}

// loginLoop connects to addr, logs in as alice and logs out, b.N times.
func loginLoop(b *testing.B, addr string) {
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReader(c)
		readUntil(b, br, "* OK")
		io.WriteString(c, "a LOGIN alice@a.test apass\r\n")
		readUntil(b, br, "a OK")
		io.WriteString(c, "b LOGOUT\r\n")
		readUntil(b, br, "b OK")
		c.Close()
	}
}

func readUntil(b *testing.B, br *bufio.Reader, prefix string) {
	for range 20 {
		l, err := br.ReadString('\n')
		if err != nil {
			b.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(l, prefix) {
			return
		}
	}
	b.Fatalf("no %q", prefix)
}

// BenchmarkLoginID: as BenchmarkLogin, to a scripted Dovecot-like backend
// that advertises ID, LITERAL+ and SASL-IR in its greeting, so that the
// proxy sends ID and LOGIN in one write (one round trip fewer than asking
// ID first).
func BenchmarkLoginID(b *testing.B) {
	fb := startFake(b, func(fc *fakeConn) {
		fc.send("* OK [CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN] ready\r\n")
		fc.answerIDThenLogin(nil, " OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
	})
	p := startProxy(b, &imap.Server{
		Server: gateway.Server{
			Router:             routes(b, map[string][]string{"alice@a.test": {plainURL(fb.addr)}}),
			AllowPlaintextAuth: true,
			Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
	})
	loginLoop(b, p.addr)
}
