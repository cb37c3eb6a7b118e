package imap_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/imap"
	"github.com/pipegate/pipegate/pipe"
)

// TestTLSSessionsOnTheLoops: with an Engine, a logged-in session over
// implicit TLS or STARTTLS (TLS 1.3) is carried on the event loops, whose
// own record layer then serves the client: commands pipelined behind LOGIN
// in the same write, later commands and LOGOUT all work.
func TestTLSSessionsOnTheLoops(t *testing.T) {
	pki := newPKI(t)
	_, _, r := twoBackends(t)
	eng := &pipe.Engine{}
	p := startProxy(t, &imap.Server{Server: gateway.Server{Router: r, TLSConfig: pki.server, Engine: eng}})

	// Implicit TLS, LOGIN and SELECT in one write: SELECT reaches the
	// backend through the hand-over.
	tc, err := tls.Dial("tcp", p.tlsAddr, pki.client)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawClient{t: t, conn: tc, r: newLineReader(tc)}
	rc.expectPrefix("* OK ")
	rc.send("a LOGIN alice@a.test apass\r\nb SELECT INBOX\r\n")
	rc.expectPrefix("a OK")
	rc.expectPrefix("b OK")
	if got := eng.Stats().OnLoops; got != 1 {
		t.Fatalf("%d sessions on the loops after a TLS login, want 1", got)
	}
	rc.send("c NOOP\r\n")
	rc.expectPrefix("c OK")

	// STARTTLS, through go-imap's client.
	c, err := imapclient.DialStartTLS(p.addr, &imapclient.Options{TLSConfig: pki.client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob@b.test", "bpass").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if got := eng.Stats().OnLoops; got != 2 {
		t.Fatalf("%d sessions on the loops after a STARTTLS login, want 2", got)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT through the loop: %v", err)
	}
	rc.send("d LOGOUT\r\n")
	rc.expectPrefix("* BYE")
	rc.expectPrefix("d OK")
}
