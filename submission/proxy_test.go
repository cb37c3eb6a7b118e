package submission_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/route"
	"github.com/pipegate/pipegate/submission"
)

var users = map[string]string{"alice@a.test": "secret", "bob@b.test": "pw"}

// TestGoSMTPClient: go-smtp's client sends through the proxy (STARTTLS,
// AUTH PLAIN) to a go-smtp backend; the message arrives with its
// envelope.
func TestGoSMTPClient(t *testing.T) {
	pki := newPKI(t)
	be := startBackend(t, users, nil, false)
	rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + be.addr + "?client_addr=none"}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, TLSConfig: pki.server}})

	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClientStartTLS(conn, pki.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Errorf("AUTH after STARTTLS: %v %q", ok, mechs)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice@a.test", "secret")); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: hi\r\n\r\nhello\r\n"
	if err := c.SendMail("alice@a.test", []string{"carol@c.test", "dave@d.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	m := be.wait(t)
	if m.user != "alice@a.test" || m.from != "alice@a.test" || strings.Join(m.to, ",") != "carol@c.test,dave@d.test" || m.data != msg {
		t.Errorf("backend got %+v", m)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
}

// TestDialogueAfterAuth: after 235 everything goes to the backend: its
// EHLO (capabilities after login are the backend's), MAIL, and bytes the
// client pipelined behind AUTH.
func TestDialogueAfterAuth(t *testing.T) {
	be := startBackend(t, users, nil, false)
	rt := newRoutes(t, map[string][]string{"@b.test": {"submission://" + be.addr + "?client_addr=none"}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	if g := c.reply(); g != "220 gw.test ESMTP pipegate" {
		t.Fatalf("greeting %q", g)
	}
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN")
	// AUTH with MAIL pipelined behind it: the MAIL goes to the backend.
	c.send("AUTH PLAIN " + plain("", "bob@b.test", "pw") + "\r\nMAIL FROM:<bob@b.test>\r\n")
	if r := c.reply(); r != "235 2.0.0 Authentication succeeded" {
		t.Fatalf("AUTH: %q", r)
	}
	if r := c.reply(); !strings.HasPrefix(r, "250 2.0.0") {
		t.Fatalf("pipelined MAIL: %q", r)
	}
	c.send("EHLO client.test\r\n")
	if r := c.reply(); !strings.Contains(r, "\n250-CHUNKING\n") {
		t.Fatalf("EHLO after AUTH is not the backend's: %q", r)
	}
	c.cmd("MAIL FROM:<bob@b.test>", "250 2.0.0 Roger, accepting mail from <bob@b.test>")
	c.cmd("RCPT TO:<carol@c.test>", "250 2.0.0 I'll make sure <carol@c.test> gets this")
	c.cmd("DATA", "354 Go ahead. End your data with <CR><LF>.<CR><LF>")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	if r := c.reply(); !strings.HasPrefix(r, "250 2.0.0") {
		t.Fatalf("end of DATA: %q", r)
	}
	if m := be.wait(t); m.user != "bob@b.test" || m.from != "bob@b.test" || strings.Join(m.to, ",") != "carol@c.test" || m.data != "Subject: x\r\n\r\nbody\r\n" {
		t.Errorf("backend got %+v", m)
	}
}

// TestDialogueBeforeAuth: what the proxy answers itself.
func TestDialogueBeforeAuth(t *testing.T) {
	pki := newPKI(t)
	rt := newRoutes(t, nil)
	p := startProxy(t, &submission.Server{
		Server:     gateway.Server{Router: rt, TLSConfig: pki.server},
		Greeting:   "ready",
		Extensions: []string{"SIZE 1000", "8BITMIME", "AUTH GSSAPI", "starttls"},
	})
	c := dialRaw(t, "127.0.0.1", p.addr)
	if g := c.reply(); g != "220 gw.test ESMTP ready" {
		t.Fatalf("greeting %q", g)
	}
	c.cmd("MAIL FROM:<a@b>", "530 5.7.0 Authentication required")
	c.cmd("AUTH PLAIN", "503 5.5.1 Send EHLO first")
	c.cmd("HELO client.test", "250 gw.test")
	c.cmd("EHLO", "501 5.5.4 Syntax: EHLO hostname")
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-SIZE 1000\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250 STARTTLS")
	c.cmd("MAIL FROM:<a@b>", "530 5.7.0 Authentication required")
	c.cmd("RCPT TO:<a@b>", "530 5.7.0 Authentication required")
	c.cmd("DATA", "530 5.7.0 Authentication required")
	c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "538 5.7.11 Encryption required for requested authentication mechanism")
	c.cmd("AUTH plain", "538 5.7.11 Encryption required for requested authentication mechanism")
	c.cmd("AUTH CRAM-MD5", "504 5.5.4 Unrecognized authentication type")
	c.cmd("AUTH pla\u0131n", "504 5.5.4 Unrecognized authentication type")
	c.cmd("AUTH PLAIN\u00a0"+plain("", "alice@a.test", "secret"), "504 5.5.4 Unrecognized authentication type")
	c.cmd("NOOP", "250 2.0.0 OK")
	c.cmd("RSET", "250 2.0.0 OK")
	c.cmd("VRFY alice", "530 5.7.0 Authentication required")
	c.cmd("EXPN staff", "530 5.7.0 Authentication required")
	c.cmd("ETRN a.test", "530 5.7.0 Authentication required")
	c.cmd("HELP", "502 5.5.1 Command not implemented")
	c.cmd("XCLIENT ADDR=10.0.0.1", "502 5.5.1 Command not implemented")
	c.cmd("FOO", "500 5.5.2 Command unrecognized")
	c.cmd("MAIL FROM:<a@b>\x00", "500 5.5.2 Invalid character 0x00 in command")
	c.cmd("QUIT", "221 2.0.0 Bye")
	if r := c.rest(); r != "" {
		t.Errorf("after QUIT: %q", r)
	}
	if n := rt.lookups(); n != 0 {
		t.Errorf("%d route lookups", n)
	}
}

// TestPipelinedPartialLine: the replies to pipelined commands go out
// before the proxy waits for the rest of a line the client has begun
// (a client may wait for them before it sends more), and reach a client
// that half-closes after a line it never ends.
func TestPipelinedPartialLine(t *testing.T) {
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: newRoutes(t, nil), AllowPlaintextAuth: true}})
	ehlo := "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN"
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.send("EHLO client.test\r\nNOOP\r\nNO")
	if r := c.reply(); r != ehlo {
		t.Fatalf("EHLO: %q", r)
	}
	if r := c.reply(); r != "250 2.0.0 OK" {
		t.Fatalf("NOOP: %q", r)
	}
	c.cmd("OP", "250 2.0.0 OK")

	c = dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.send("EHLO client.test\r\nNO")
	if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if r := c.rest(); r != strings.ReplaceAll(ehlo, "\n", "\r\n")+"\r\n" {
		t.Errorf("after a half-close: %q, want the EHLO reply", r)
	}
}

// TestStartTLSPipelined: commands pipelined behind STARTTLS are never
// executed (CVE-2011-0411): they go into the TLS handshake, which fails.
func TestStartTLSPipelined(t *testing.T) {
	pki := newPKI(t)
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: newRoutes(t, nil), TLSConfig: pki.server}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 STARTTLS")
	c.send("STARTTLS\r\nMAIL FROM:<a@b>\r\n")
	if r := c.reply(); r != "220 2.0.0 Ready to start TLS" {
		t.Fatalf("STARTTLS: %q", r)
	}
	if r := c.rest(); strings.Contains(r, "530") || strings.Contains(r, "250") {
		t.Errorf("the pipelined MAIL was answered: %q", r)
	}
}

// TestStartTLSThenEHLO: after STARTTLS the client must say EHLO again;
// the EHLO lists AUTH and no STARTTLS; implicit TLS offers AUTH at once.
func TestStartTLSThenEHLO(t *testing.T) {
	pki := newPKI(t)
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: newRoutes(t, nil), TLSConfig: pki.server}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 STARTTLS")
	c.cmd("STARTTLS", "220 2.0.0 Ready to start TLS")
	c.startTLS(pki.client)
	c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "503 5.5.1 Send EHLO first")
	c.cmd("STARTTLS", "503 5.5.1 TLS already active")
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN")

	tc := dialRaw(t, "127.0.0.1", p.tlsAddr)
	tc.startTLS(pki.client)
	if g := tc.reply(); g != "220 gw.test ESMTP pipegate" {
		t.Fatalf("greeting on implicit TLS: %q", g)
	}
	tc.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN")
}

// TestAuthFailures: refusals, each in its SMTP form, and the name rules
// applied before any route lookup.
func TestAuthFailures(t *testing.T) {
	be := startBackend(t, users, nil, false)
	rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + be.addr + "?client_addr=none"}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true, MaxLoginFailures: 3}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN")
	c.cmd("AUTH PLAIN *", "501 5.5.2 Cannot Base64-decode Client responses")
	c.cmd("AUTH PLAIN", "334 ")
	c.cmd("*", "501 5.0.0 Authentication cancelled")
	c.cmd("AUTH", "501 5.5.4 Syntax: AUTH mechanism [initial-response]")
	// NUL in the name, through AUTH LOGIN: refused before routing.
	c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6")
	c.cmd(b64("bob@a.test\x00alice@a.test"), "334 UGFzc3dvcmQ6")
	c.cmd(b64("secret"), "535 5.7.8 Invalid characters in the user name")
	if n := rt.lookups(); n != 0 {
		t.Fatalf("%d route lookups for a name with NUL", n)
	}
	c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "wrong"), "535 5.7.8 Authentication credentials invalid")
	c.cmd("AUTH PLAIN "+plain("", "nobody@z.test", "x"), "535 5.7.8 Authentication credentials invalid")
	if r := c.reply(); r != "421 4.7.0 gw.test Too many authentication failures" {
		t.Errorf("after the third failure: %q", r)
	}
	if r := c.rest(); r != "" {
		t.Errorf("after the goodbye: %q", r)
	}
}

// TestUnavailable: a backend that cannot be reached is 454 4.7.0.
func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	rt := newRoutes(t, map[string][]string{"@a.test": {"submission://" + dead}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: rt, AllowPlaintextAuth: true}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN")
	c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "454 4.7.0 Temporary authentication failure")
}

// TestLongLine: an over-long line is answered as soon as the limit is
// passed, without waiting for its end, and the connection closed.
func TestLongLine(t *testing.T) {
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: newRoutes(t, nil)}})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.send("EHLO " + strings.Repeat("x", 600)) // no line end
	if r := c.reply(); r != "500 5.5.2 Line too long (limit 512 octets)" {
		t.Fatalf("got %q", r)
	}
	if r := c.rest(); r != "" {
		t.Errorf("then %q", r)
	}
}

// TestTooManyCommands: the proxy does not chat forever before AUTH.
func TestTooManyCommands(t *testing.T) {
	p := startProxy(t, &submission.Server{Server: gateway.Server{Router: newRoutes(t, nil)}, MaxCommandsBeforeAuth: 2})
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.cmd("NOOP", "250 2.0.0 OK")
	c.cmd("NOOP", "250 2.0.0 OK")
	c.cmd("NOOP", "421 4.7.0 gw.test Too many commands before authentication")
}

// TestShutdownBeforeAuth: Shutdown says 421 to a client waiting before
// AUTH.
func TestShutdownBeforeAuth(t *testing.T) {
	srv := &submission.Server{Server: gateway.Server{Router: newRoutes(t, nil)}}
	p := startProxy(t, srv)
	c := dialRaw(t, "127.0.0.1", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250 ENHANCEDSTATUSCODES")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := c.reply(); r != "421 4.3.2 gw.test Server shutting down" {
		t.Errorf("got %q", r)
	}
}

// TestSchemes: the backend URLs this package registers.
func TestSchemes(t *testing.T) {
	for _, tc := range []struct {
		url  string
		addr string
		tls  route.TLSMode
		mode route.ClientAddrMode
	}{
		{"submission://mx.test", "mx.test:587", route.TLSNone, route.ClientAddrXCLIENT},
		{"submission+starttls://mx.test", "mx.test:587", route.TLSStartTLS, route.ClientAddrXCLIENT},
		{"submissions://mx.test", "mx.test:465", route.TLSImplicit, route.ClientAddrXCLIENT},
		{"submission://mx.test:25?client_addr=none", "mx.test:25", route.TLSNone, route.ClientAddrNone},
		{"submissions://mx.test?proxy=v2", "mx.test:465", route.TLSImplicit, route.ClientAddrProxy},
	} {
		b, err := route.ParseBackend(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if b.Protocol != submission.Name || b.Addr != tc.addr || b.TLS != tc.tls || b.ClientAddr != tc.mode {
			t.Errorf("%s: %+v", tc.url, b)
		}
		if s := b.String(); s != tc.url && !strings.HasPrefix(tc.url, s) {
			t.Logf("%s written back as %s", tc.url, s)
		}
	}
	if _, err := route.ParseBackend("submission://mx.test?client_addr=id"); err == nil {
		t.Error("client_addr=id accepted for submission")
	}
}
