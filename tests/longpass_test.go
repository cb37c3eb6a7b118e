package tests

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// dialTLSFrom connects from src to addr over implicit TLS, verifying
// the certificate against the test CA, and reads the greeting line.
func dialTLSFrom(t *testing.T, caFile, src, addr string) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	return c, r
}

// lineWith reads lines until one starts with prefix (or the conn ends)
// and returns it.
func lineWith(r *bufio.Reader, prefix string) string {
	for range 100 {
		l, err := r.ReadString('\n')
		if err != nil {
			return fmt.Sprintf("%q (%v)", l, err)
		}
		if strings.HasPrefix(l, prefix) || strings.HasPrefix(l, "* BYE") {
			return strings.TrimRight(l, "\r\n")
		}
	}
	return "(no answer)"
}

// TestIMAPLongPasswordAuthenticate: a user whose password is 2000
// bytes (a token used as a password, as Dovecot's oauth2 passdb takes
// over PLAIN) logs in with AUTHENTICATE PLAIN and SASL-IR. Dovecot takes
// it directly; through pipegate the same command must work too. pipegate
// turned AUTHENTICATE PLAIN into a backend LOGIN, which Dovecot's
// imap-login refuses ("Input buffer full"), and the client was told
// "NO [UNAVAILABLE] Server unavailable, try again later".
func TestIMAPLongPasswordAuthenticate(t *testing.T) {
	f := startLongPassFront(t, "")
	user, pass := "long2000@a.test", longPassword(2000)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	for _, tc := range []struct{ name, addr, src string }{
		{"Dovecot directly", f.direct["imaps"], "127.0.0.31"},
		{"pipegate", f.addrs["imaps"], "127.0.0.32"},
	} {
		c, r := dialTLSFrom(t, f.caFile, tc.src, tc.addr)
		fmt.Fprintf(c, "a AUTHENTICATE PLAIN %s\r\n", ir)
		if got := lineWith(r, "a "); !strings.HasPrefix(got, "a OK") {
			t.Errorf("%s: AUTHENTICATE PLAIN with a %d-byte password answered %.120s, want a OK", tc.name, len(pass), got)
		}
	}
}

// TestPOP3LongPasswordUserPass: fetchmail (and poplib) log in with
// USER and PASS. Dovecot takes a 300-byte password in PASS; pipegate
// ended the session with "-ERR Command line too long (limit 255 octets)"
// (RFC 2449's limit for clients).
func TestPOP3LongPasswordUserPass(t *testing.T) {
	f := startLongPassFront(t, "")
	user, pass := "long300@a.test", longPassword(300)
	for _, tc := range []struct{ name, addr, src string }{
		{"Dovecot directly", f.direct["pop3s"], "127.0.0.33"},
		{"pipegate", f.addrs["pop3s"], "127.0.0.34"},
	} {
		c, r := dialTLSFrom(t, f.caFile, tc.src, tc.addr)
		fmt.Fprintf(c, "USER %s\r\n", user)
		if got := lineWith(r, "+OK"); !strings.HasPrefix(got, "+OK") {
			t.Fatalf("%s: USER answered %q", tc.name, got)
		}
		fmt.Fprintf(c, "PASS %s\r\n", pass)
		if got := lineWith(r, ""); !strings.HasPrefix(got, "+OK") {
			t.Errorf("%s: PASS with a %d-byte password answered %.120s, want +OK", tc.name, len(pass), got)
		}
	}
}
