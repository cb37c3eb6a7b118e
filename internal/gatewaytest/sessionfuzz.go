package gatewaytest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
)

// FuzzServer is the gateway.Server of a whole-session fuzz target, with
// router, tlsConf (STARTTLS) and metrics: plaintext logins and OAuth
// allowed, so that every login path is reached; a 2 s login timeout; no
// failure delay and no pre-login limit per address (every input comes
// from 127.0.0.1); its log goes to logs.
func FuzzServer(router route.Router, tlsConf *tls.Config, metrics *gateway.Metrics, logs *PanicLog) gateway.Server {
	return gateway.Server{
		Router:             router,
		TLSConfig:          tlsConf,
		AllowPlaintextAuth: true,
		OAuth:              true,
		LoginTimeout:       2 * time.Second,
		FailureDelay:       -1,
		MaxPreLoginPerIP:   -1,
		Metrics:            metrics,
		Logger:             slog.New(slog.NewTextHandler(logs, nil)),
	}
}

// PanicLog is a proxy's log in a whole-session fuzz target: discarded
// but for the first line that speaks of a panic (a pipe recovers one and
// logs it).
type PanicLog struct{ panicked atomic.Pointer[string] }

func (l *PanicLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("panic")) {
		s := string(p)
		l.panicked.CompareAndSwap(nil, &s)
	}
	return len(p), nil
}

// FuzzSession runs one input of a whole-session fuzz target: c is a
// client connection to the proxy whose greeting r (c's reader) has read.
// It writes in to c and half-closes it, from a goroutine of its own (the
// proxy may answer, or end the session, before it has read everything),
// reads r until the proxy closes (EOF, or a reset when it closed with
// input unread; after 10 s the session hung, and t fails), and fails t
// if check refuses the output or logs (the proxy's) holds a panic.
// check's loggedIn says whether the proxy's logins counter (metric in
// reg, say pipegate_imap_logins_total) counted an "ok" login meanwhile:
// after its answer the backend speaks.
func FuzzSession(t *testing.T, reg *prometheus.Registry, metric string, logs *PanicLog, c net.Conn, r io.Reader, in []byte, check func(out []byte, loggedIn bool) error) {
	t.Helper()
	logins := Counted(t, reg, metric, "result", "ok")
	done := make(chan struct{})
	go sendAndHalfClose(c, in, done)
	defer func() { c.Close(); <-done }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("session hung after client EOF\ninput:  %q\noutput: %q", in, out)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v\ninput: %q", err, in)
	}
	loggedIn := Counted(t, reg, metric, "result", "ok") > logins
	if err := check(out, loggedIn); err != nil {
		t.Fatalf("%v\ninput:  %q\noutput: %q", err, in, out)
	}
	if l := logs.panicked.Load(); l != nil {
		t.Fatalf("the proxy logged a panic: %s\ninput: %q", *l, in)
	}
}

// sendAndHalfClose is FuzzSession's writer.
func sendAndHalfClose(c net.Conn, in []byte, done chan<- struct{}) {
	defer close(done)
	if _, err := c.Write(in); err == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
}

// TLSRecords checks what follows the proxy's answer to STARTTLS (STLS):
// nothing, or TLS records (its alert to a handshake that failed), never
// a plaintext answer to what the client sent after the command.
func TLSRecords(out []byte) error {
	if len(out) == 0 || len(out) >= 5 && (out[0] == 0x15 || out[0] == 0x16) && out[1] == 3 {
		return nil
	}
	return fmt.Errorf("not TLS after STARTTLS: %q", out)
}
