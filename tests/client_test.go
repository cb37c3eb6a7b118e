package tests

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// ioTimeout bounds every client read and write.
const ioTimeout = 15 * time.Second

// dialFrom connects to addr from the loopback address src (127.0.0.2,
// ...), so that backends can tell the client's address from pipegate's.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c, err := dialFromErr(src, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialFromErr is dialFrom for goroutines other than the test's.
func dialFromErr(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, src, err)
	}
	return c, nil
}

// rawClient speaks IMAP line by line, for tests that need exact bytes.
type rawClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func newRaw(t *testing.T, c net.Conn) *rawClient {
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &rawClient{t: t, c: c, r: bufio.NewReader(c)}
}

// rawDial connects from src and reads the greeting.
func rawDial(t *testing.T, src, addr string) *rawClient {
	t.Helper()
	rc := newRaw(t, dialFrom(t, src, addr))
	rc.expect("* OK")
	return rc
}

func (rc *rawClient) send(format string, args ...any) {
	rc.t.Helper()
	if _, err := fmt.Fprintf(rc.c, format, args...); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// line reads one line (without CRLF).
func (rc *rawClient) line() (string, error) {
	s, err := rc.r.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

// expect reads lines until one starts with prefix (at most 100).
func (rc *rawClient) expect(prefix string) string {
	rc.t.Helper()
	var seen []string
	for range 100 {
		l, err := rc.line()
		if err != nil {
			rc.t.Fatalf("waiting for %q: %v (read so far: %q)", prefix, err, seen)
		}
		if strings.HasPrefix(l, prefix) {
			return l
		}
		seen = append(seen, l)
	}
	rc.t.Fatalf("no line starting with %q in 100 lines: %q", prefix, seen)
	return ""
}

// untilClosed reads until EOF or error and returns everything read.
func (rc *rawClient) untilClosed() (string, error) {
	b, err := io.ReadAll(rc.r)
	return string(b), err
}

// startTLS upgrades the raw client after "a OK" to STARTTLS.
func (rc *rawClient) startTLS(cfg *tls.Config) {
	rc.t.Helper()
	tc := tls.Client(rc.c, cfg)
	if err := tc.Handshake(); err != nil {
		rc.t.Fatalf("TLS handshake: %v", err)
	}
	rc.c, rc.r = tc, bufio.NewReader(tc)
}

// goClient is a go-imap v2 client over a connection from src, in mode
// "plain", "starttls" or "tls" (implicit).
func (e *env) goClient(src, mode string) *imapclient.Client {
	e.t.Helper()
	opts := &imapclient.Options{TLSConfig: e.clientTLS()}
	switch mode {
	case "plain":
		return imapclient.New(dialFrom(e.t, src, e.plainAddr), opts)
	case "starttls":
		c, err := imapclient.NewStartTLS(dialFrom(e.t, src, e.plainAddr), opts)
		if err != nil {
			e.t.Fatalf("STARTTLS: %v", err)
		}
		return c
	case "tls":
		tc := tls.Client(dialFrom(e.t, src, e.tlsAddr), e.clientTLS())
		return imapclient.New(tc, opts)
	}
	e.t.Fatalf("unknown mode %q", mode)
	return nil
}

// rawTLS connects from src to pipegate's implicit-TLS port and reads the
// greeting.
func (e *env) rawTLS(t *testing.T, src string) *rawClient {
	t.Helper()
	rc := newRaw(t, tls.Client(dialFrom(t, src, e.tlsAddr), e.clientTLS()))
	rc.expect("* OK")
	return rc
}

// newTLSClientConn is a TLS connection from 127.0.0.2 to pipegate's
// implicit-TLS port.
func newTLSClientConn(t *testing.T, e *env) *tls.Conn {
	t.Helper()
	return tls.Client(dialFrom(t, "127.0.0.2", e.tlsAddr), e.clientTLS())
}
