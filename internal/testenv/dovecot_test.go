package testenv_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDovecotLoginWithID logs in from 127.0.0.2 on the plain port, sends an
// ID with another address and checks that Dovecot (which does not trust
// 127.0.0.2) logs the real source address and the message count.
func TestDovecotLoginWithID(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret"},
		Messages:        map[string][]string{"alice@a.test": {"Subject: one\r\n\r\nhello\r\n", "Subject: two\r\n\r\nworld\r\n"}},
		TrustedNetworks: []string{"127.0.0.1/32"},
		CertFile:        cert, KeyFile: key,
	})
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	c, err := dialer.Dial("tcp", d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	expect(t, r, "* OK")
	fmt.Fprintf(c, "a ID (\"x-originating-ip\" \"10.9.9.9\")\r\nb LOGIN alice@a.test secret\r\nc SELECT INBOX\r\n")
	expect(t, r, "a OK")
	expect(t, r, "b OK [CAPABILITY")
	expect(t, r, "* 2 EXISTS")
	d.WaitLog(t, `Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.2,`)

	// implicit TLS verifies against the test CA
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", d.TLSAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	expect(t, bufio.NewReader(tc), "* OK")
}

// TestDovecotSelfSigned starts an instance with no certificate given.
func TestDovecotSelfSigned(t *testing.T) {
	d := testenv.StartDovecot(t, testenv.DovecotOptions{})
	if _, err := d.FindLog(`starting up`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.FindLog(`no such line`, 10*time.Millisecond); err == nil {
		t.Fatal("FindLog matched a line that is not there")
	}
	if d.CertFile == "" {
		t.Fatal("no self-signed certificate")
	}
}

// expect reads lines until one starts with prefix (at most 50 lines).
func expect(t *testing.T, r *bufio.Reader, prefix string) string {
	t.Helper()
	for range 50 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no line starting with %q in 50 lines", prefix)
	return ""
}
