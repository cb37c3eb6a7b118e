package testenv_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestCyrusInstance starts a Cyrus with TLS, a user of a virtual domain
// with a delivered message and a user without a domain, and checks each
// service as a client sees it, the log, and that Close leaves no process.
func TestCyrusInstance(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	c := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users:    map[string]string{"alice@a.test": "secret", "bob": "pw-bob"},
		Messages: map[string][]string{"alice@a.test": {"Subject: one\r\n\r\nhello\r\n"}},
		CertFile: cert, KeyFile: key,
	})

	// IMAP: the delivered message is in alice's INBOX.
	r, w := cyrusDial(t, c.IMAPAddr, nil)
	expect(t, r, "* OK [CAPABILITY IMAP4rev1 ")
	fmt.Fprintf(w, "a LOGIN alice@a.test secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
	expect(t, r, "a OK [CAPABILITY ")
	expect(t, r, "* 1 EXISTS")
	c.WaitLog(t, `imap\[\d+\]: login: localhost \[127\.0\.0\.1\] alice@a\.test plaintext User logged in`)

	// A name without a domain, over imaps verified against the test CA.
	r, w = cyrusDial(t, c.IMAPSAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	expect(t, r, "* OK ")
	fmt.Fprintf(w, "a LOGIN bob pw-bob\r\n")
	expect(t, r, "a OK ")

	// A wrong password is refused at once (failedloginpause: 0).
	r, w = cyrusDial(t, c.IMAPAddr, nil)
	expect(t, r, "* OK ")
	fmt.Fprintf(w, "a LOGIN alice@a.test wrong\r\n")
	expect(t, r, "a NO ")
	c.WaitLog(t, `badlogin: localhost \[127\.0\.0\.1\] plaintext \(alice@a\.test\)`)

	// POP3 with STLS, and ManageSieve's greeting with STARTTLS.
	r, w = cyrusDial(t, c.POP3Addr, nil)
	expect(t, r, "+OK cyrus.test Cyrus POP3")
	fmt.Fprintf(w, "CAPA\r\n")
	capa := cyrusReadUntil(t, r, ".")
	if !strings.Contains(capa, "STLS") || !strings.Contains(capa, "SASL PLAIN LOGIN") {
		t.Errorf("POP3 CAPA:\n%s", capa)
	}
	r, _ = cyrusDial(t, c.SieveAddr, nil)
	greeting := cyrusReadUntil(t, r, "OK")
	if !strings.Contains(greeting, `"STARTTLS"`) || !strings.Contains(greeting, `"SASL" "PLAIN LOGIN"`) {
		t.Errorf("ManageSieve greeting:\n%s", greeting)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if left := c.Processes(); len(left) > 0 {
		t.Fatalf("processes left after Close: %v", left)
	}
	if conn, err := net.DialTimeout("tcp", c.IMAPAddr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts after Close", c.IMAPAddr)
	}
}

// TestCyrusRequireTLS: with allowplaintext: no, IMAP on a plain link
// advertises LOGINDISABLED and no AUTH=PLAIN, and refuses LOGIN; over
// imaps the user logs in.
func TestCyrusRequireTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	c := testenv.StartCyrus(t, testenv.CyrusOptions{
		Users:    map[string]string{"alice@a.test": "secret"},
		CertFile: cert, KeyFile: key,
		RequireTLS: true,
	})
	r, w := cyrusDial(t, c.IMAPAddr, nil)
	greeting := expect(t, r, "* OK ")
	if !strings.Contains(greeting, " LOGINDISABLED") || strings.Contains(greeting, "AUTH=PLAIN") {
		t.Errorf("greeting: %q", greeting)
	}
	fmt.Fprintf(w, "a LOGIN alice@a.test secret\r\n")
	expect(t, r, "a NO ")
	r, w = cyrusDial(t, c.IMAPSAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	expect(t, r, "* OK ")
	fmt.Fprintf(w, "a LOGIN alice@a.test secret\r\n")
	expect(t, r, "a OK ")
}

// cyrusDial connects (with TLS when conf is set) and returns a reader and
// a writer; the connection is closed at cleanup.
func cyrusDial(t *testing.T, addr string, conf *tls.Config) (*bufio.Reader, net.Conn) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	if conf != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, conf)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return bufio.NewReader(conn), conn
}

// cyrusReadUntil reads lines up to one starting with prefix (at most 100) and
// returns them all.
func cyrusReadUntil(t *testing.T, r *bufio.Reader, prefix string) string {
	t.Helper()
	var b strings.Builder
	for range 100 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, b.String())
		}
		b.WriteString(l)
		if strings.HasPrefix(l, prefix) {
			return b.String()
		}
	}
	t.Fatalf("no line starting with %q in %q", prefix, b.String())
	return ""
}
