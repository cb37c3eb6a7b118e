package tests

import (
	"crypto/tls"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// loginAndCount logs in with method ("login" or "plain") and returns the
// number of messages in INBOX.
func loginAndCount(t *testing.T, c *imapclient.Client, account, method string) int {
	t.Helper()
	defer c.Close()
	var err error
	switch method {
	case "login":
		err = c.Login(account, password(account)).Wait()
	case "plain":
		err = c.Authenticate(sasl.NewPlainClient("", account, password(account)))
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, account, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("logout: %v", err)
	}
	return int(sel.NumMessages)
}

// TestRouting logs accounts of both Dovecot backends in through pipegate
// with LOGIN and AUTHENTICATE PLAIN, after STARTTLS and on implicit TLS,
// towards plain, STARTTLS and imaps backends, and checks each reached the
// backend holding its messages, which logged the client's address (sent
// with ID), not pipegate's.
func TestRouting(t *testing.T) {
	e := newEnv(t, envOptions{})
	cases := []struct {
		account string
		why     string
	}{
		{"alice@a.test", "by account, plain backend"},
		{"carol@a.test", "by account, first backend down, STARTTLS backend"},
		{"bob@b.test", "by domain, imaps backend"},
		{"dave@b.test", "by domain, imaps backend"},
	}
	for _, tc := range cases {
		for _, mode := range []string{"starttls", "tls"} {
			for _, method := range []string{"login", "plain"} {
				t.Run(fmt.Sprintf("%s/%s/%s", tc.account, mode, method), func(t *testing.T) {
					n := loginAndCount(t, e.goClient("127.0.0.2", mode), tc.account, method)
					if n != messageCount[tc.account] {
						t.Fatalf("%s (%s): %d messages, want %d: wrong backend", tc.account, tc.why, n, messageCount[tc.account])
					}
				})
			}
		}
	}
	for _, d := range []struct {
		name    string
		log     func() string
		account string
	}{{"backend 1", e.d1.Log, "alice@a.test"}, {"backend 2", e.d2.Log, "bob@b.test"}} {
		re := regexp.MustCompile(`Login: user=<` + regexp.QuoteMeta(d.account) + `>, method=PLAIN, rip=([0-9.]+), lip=([0-9.]+)`)
		found := 0
		for _, m := range re.FindAllStringSubmatch(d.log(), -1) {
			found++
			if m[1] != "127.0.0.2" {
				t.Errorf("%s logged rip=%s for %s, want the client's 127.0.0.2 (not pipegate's address)", d.name, m[1], d.account)
			}
		}
		if found != 4 {
			t.Errorf("%s logged %d logins of %s, want 4:\n%s", d.name, found, d.account, d.log())
		}
	}
	e.waitLog(`msg="imap session".*account=alice@a.test`)
	if m := e.metrics(); !strings.Contains(m, "imap") {
		t.Errorf("no imap metrics:\n%s", m)
	}
}

// TestPlaintextRefused: without allow_plaintext_auth a plain link offers
// LOGINDISABLED and refuses LOGIN; STARTTLS then works.
func TestPlaintextRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	rc := newRaw(t, dialFrom(t, "127.0.0.2", e.plainAddr))
	greeting := rc.expect("* OK")
	if !strings.Contains(greeting, "LOGINDISABLED") && !strings.Contains(greeting, "STARTTLS") {
		t.Errorf("greeting without LOGINDISABLED/STARTTLS: %s", greeting)
	}
	rc.send("a LOGIN alice@a.test alice-secret\r\n")
	if l := rc.expect("a "); strings.HasPrefix(l, "a OK") {
		t.Fatalf("plaintext LOGIN accepted: %s", l)
	}
	rc.send("b STARTTLS\r\n")
	rc.expect("b OK")
	rc.startTLS(e.clientTLS())
	rc.send("c LOGIN alice@a.test alice-secret\r\n")
	if l := rc.expect("c "); !strings.HasPrefix(l, "c OK [CAPABILITY") {
		t.Fatalf("LOGIN after STARTTLS: %s", l)
	}
}

// TestAllowPlaintext: with allow_plaintext_auth, LOGIN and AUTHENTICATE
// PLAIN work on a plain link.
func TestAllowPlaintext(t *testing.T) {
	e := newEnv(t, envOptions{allowPlaintext: true})
	for _, method := range []string{"login", "plain"} {
		if n := loginAndCount(t, e.goClient("127.0.0.2", "plain"), "alice@a.test", method); n != messageCount["alice@a.test"] {
			t.Fatalf("%s: %d messages", method, n)
		}
	}
}

// TestWrongThenRightPassword: the backend's NO reaches the client, which
// then logs in on the same connection.
func TestWrongThenRightPassword(t *testing.T) {
	e := newEnv(t, envOptions{})
	rc := e.rawTLS(t, "127.0.0.3")
	rc.send("a LOGIN alice@a.test wrong\r\n")
	if l := rc.expect("a "); !strings.HasPrefix(l, "a NO") || !strings.Contains(l, "AUTHENTICATIONFAILED") {
		t.Fatalf("wrong password: %s", l)
	}
	rc.send("b LOGIN alice@a.test alice-secret\r\nc SELECT INBOX\r\n") // SELECT pipelined after LOGIN
	if l := rc.expect("b "); !strings.HasPrefix(l, "b OK [CAPABILITY") {
		t.Fatalf("right password after a wrong one: %s", l)
	}
	rc.expect(fmt.Sprintf("* %d EXISTS", messageCount["alice@a.test"]))
	rc.expect("c OK")
	e.d1.WaitLog(t, `auth failed.*rip=127\.0\.0\.3|Login: user=<alice@a.test>.*rip=127\.0\.0\.3`)
}

// TestFailover: a route whose first backend is down uses the next; a route
// with no live backend answers NO [UNAVAILABLE].
func TestFailover(t *testing.T) {
	e := newEnv(t, envOptions{})
	if n := loginAndCount(t, e.goClient("127.0.0.2", "tls"), "carol@a.test", "login"); n != messageCount["carol@a.test"] {
		t.Fatalf("carol: %d messages", n)
	}
	rc := e.rawTLS(t, "127.0.0.2")
	rc.send("a LOGIN down@b.test whatever\r\n")
	if l := rc.expect("a "); !strings.HasPrefix(l, "a NO [UNAVAILABLE]") {
		t.Fatalf("all backends down: %s", l)
	}
}

// TestReload: SIGHUP re-reads the routes file and the certificate.
func TestReload(t *testing.T) {
	e := newEnv(t, envOptions{})
	serial := func() string {
		t.Helper()
		rc := e.rawTLS(t, "127.0.0.2")
		defer rc.c.Close()
		return rc.c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	// zoe@c.test lives on backend 2 but the default route goes to 1.
	rc := e.rawTLS(t, "127.0.0.4")
	rc.send("a LOGIN zoe@c.test zoe-secret\r\n")
	if l := rc.expect("a "); !strings.HasPrefix(l, "a NO") {
		t.Fatalf("before reload: %s", l)
	}
	e.writeRoutes(fmt.Sprintf("  - domain: c.test\n    backend: imaps://%s\n", e.d2.TLSAddr))
	newCert, newKey := e.ca.Issue(t, "127.0.0.1", "localhost")
	copyFile(t, newCert, e.certFile)
	copyFile(t, newKey, e.keyFile)
	e.cmd.Process.Signal(syscall.SIGHUP)
	e.waitLog(`routes reloaded`)
	e.waitLog(`certificate reloaded`)
	if after := serial(); after == before {
		t.Errorf("certificate serial %s unchanged after SIGHUP", after)
	}
	if n := loginAndCount(t, e.goClient("127.0.0.5", "tls"), "zoe@c.test", "login"); n != messageCount["zoe@c.test"] {
		t.Fatalf("after reload: %d messages", n)
	}
}

// TestProxyProtocol: on an accept_proxy listener, the client address of
// the load balancer's PROXY header is the one Dovecot sees.
func TestProxyProtocol(t *testing.T) {
	e := newEnv(t, envOptions{acceptProxy: true})
	c := dialFrom(t, "127.0.0.1", e.proxyAddr)
	if _, err := fmt.Fprintf(c, "PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\n"); err != nil {
		t.Fatal(err)
	}
	rc := newRaw(t, c)
	rc.expect("* OK")
	rc.send("a STARTTLS\r\n")
	rc.expect("a OK")
	rc.startTLS(e.clientTLS())
	rc.send("b LOGIN alice@a.test alice-secret\r\n")
	if l := rc.expect("b "); !strings.HasPrefix(l, "b OK") {
		t.Fatalf("login behind PROXY header: %s", l)
	}
	e.d1.WaitLog(t, `Login: user=<alice@a.test>, method=PLAIN, rip=192\.0\.2\.7,`)
	rc.send("c LOGOUT\r\n")
	rc.expect("c OK")
	rc.untilClosed()
	rc.c.Close() // the session line is written when both sides are closed
	e.waitLog(`msg="imap session".*client=192\.0\.2\.7:40000`)

	// A peer that is not trusted cannot claim an address.
	c2 := dialFrom(t, "127.0.0.2", e.proxyAddr)
	fmt.Fprintf(c2, "PROXY TCP4 198.51.100.1 127.0.0.1 40000 143\r\n")
	rc2 := newRaw(t, c2)
	rc2.expect("* OK")
	rc2.send("x NOOP\r\n")
	if l := rc2.expect("PROXY "); !strings.Contains(l, "BAD") {
		t.Fatalf("untrusted PROXY line: %s", l)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}
