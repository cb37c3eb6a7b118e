package submission_test

import (
	"bytes"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/submission"
)

// The Postfix tests run the proxy in front of a real Postfix (Debian's
// 3.7), which trusts XCLIENT from the proxy's 127.0.0.1
// (smtpd_authorized_xclient_hosts), relays only for logged-in clients
// and hands what it relays to an in-process SMTP sink. Clients come from
// other loopback addresses, so that what Postfix logs and writes in
// Received tells the client's address from the proxy's.

// pfSubject finds the sink's message with that Subject.
func pfSubject(subject string) func(testenv.SinkMessage) bool {
	return func(m testenv.SinkMessage) bool {
		return bytes.Contains(m.Data, []byte("\r\nSubject: "+subject+"\r\n"))
	}
}

// smtplibSend logs in through the proxy at PLAIN (STARTTLS, trusting
// CA) from 127.0.0.2 as USER with PASS and sends a message with Subject
// SUBJECT to carol@c.test; it prints "sent", or the refusal's code and
// text.
const smtplibSend = `
import os, smtplib, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
h, p = os.environ["PLAIN"].rsplit(":", 1)
s = smtplib.SMTP(h, int(p), local_hostname="client.test", source_address=("127.0.0.2", 0), timeout=10)
s.ehlo(); s.starttls(context=ctx); s.ehlo()
try:
    s.login(os.environ["USER"], os.environ["PASS"])
except smtplib.SMTPAuthenticationError as e:
    print(e.smtp_code, e.smtp_error.decode())
    s.quit()
    raise SystemExit(0)
user = os.environ["USER"]
s.sendmail(user, ["carol@c.test"], "From: %s\r\nTo: carol@c.test\r\nSubject: %s\r\n\r\nhello\r\n" % (user, os.environ["SUBJECT"]))
s.quit()
print("sent")
`

// TestPostfixXClientLogin is nginx's usual set-up (xclient on,
// proxy_smtp_auth off): an auth_http service checks the password and
// names a backend with login=xclient; the proxy names the user to
// Postfix with XCLIENT LOGIN= and the client's address with XCLIENT
// ADDR=, in one command, since Postfix checks its
// smtpd_authorized_xclient_hosts again against the address an XCLIENT
// gave. Postfix relays the mail as alice's (permit_sasl_authenticated),
// and its log and Received line show the client's 127.0.0.2, not the
// proxy's 127.0.0.1.
func TestPostfixXClientLogin(t *testing.T) {
	ca := tlstest.NewCA(t)
	run := func(t *testing.T, pf *testenv.Postfix, subject string) {
		p := startProxy(t, &submission.Server{Server: gateway.Server{
			Router:    nginxAuthService(t, "submission://"+pf.Addr+"?login=xclient"),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1", "localhost")}},
		}})
		if out := python(t, smtplibSend, "CA="+ca.CertFile(t), "PLAIN="+p.addr, "USER=alice@a.test", "PASS=secret", "SUBJECT="+subject); out != "sent\n" {
			t.Fatalf("smtplib: %q", out)
		}
		m := pf.Sink.WaitMessage(t, pfSubject(subject))
		if m.From != "alice@a.test" || len(m.To) != 1 || m.To[0] != "carol@c.test" {
			t.Errorf("envelope from %q to %q", m.From, m.To)
		}
		if want := "Received: from client.test (unknown [127.0.0.2])\r\n\t(Authenticated sender: alice@a.test)\r\n\tby postfix.test (Postfix) with ESMTPA id "; !bytes.HasPrefix(m.Data, []byte(want)) {
			t.Errorf("relayed message:\n%s\nwant it to start %q", m.Data, want)
		}
		pf.WaitLog(t, `postfix-test/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.2\], sasl_method=XCLIENT, sasl_username=alice@a\.test$`)
		if l, err := pf.FindLog(`\bauth=|authentication`, 0); err == nil {
			t.Errorf("Postfix saw an AUTH: %s", l)
		}
		// The wrong password is the auth service's to refuse: Postfix
		// hears nothing of it.
		before := len(pf.Sink.Messages())
		if out := python(t, smtplibSend, "CA="+ca.CertFile(t), "PLAIN="+p.addr, "USER=alice@a.test", "PASS=wrong", "SUBJECT=refused"); out != "535 5.7.8 Invalid login or password\n" {
			t.Errorf("wrong password: smtplib printed %q", out)
		}
		if n := len(pf.Sink.Messages()); n != before {
			t.Errorf("%d messages relayed after a wrong password", n-before)
		}
	}

	// SASL on, but no user in its database: Postfix checks no password.
	// Postfix up to 3.7.11 (Debian 12) ignores XCLIENT LOGIN in
	// permit_sasl_authenticated unless smtpd_sasl_auth_enable = yes.
	t.Run("relayed as the user", func(t *testing.T) {
		pf := testenv.StartPostfix(t, testenv.PostfixOptions{SASL: true})
		run(t, pf, "xclient login")
	})
	// Without SASL at all the relay is open to c.test here: Postfix
	// still takes the login (log, Received) from XCLIENT.
	t.Run("without SASL", func(t *testing.T) {
		pf := testenv.StartPostfix(t, testenv.PostfixOptions{Main: "relay_domains = c.test"})
		run(t, pf, "xclient login without sasl")
	})
}

// TestPostfixAuth: towards a Postfix with SASL (Cyrus, sasldb) the proxy
// logs in with AUTH PLAIN as the user, after XCLIENT ADDR= (the client's
// address in Postfix's log and Received); a wrong password reaches the
// client as the proxy's uniform 535 5.7.8, and nothing is relayed.
func TestPostfixAuth(t *testing.T) {
	ca := tlstest.NewCA(t)
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{SASL: true, Users: map[string]string{"alice@a.test": "secret"}})
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router:    newRoutes(t, map[string][]string{"@a.test": {"submission://" + pf.Addr}}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1", "localhost")}},
	}})
	env := []string{"CA=" + ca.CertFile(t), "PLAIN=" + p.addr, "USER=alice@a.test"}

	if out := python(t, smtplibSend, append(env, "PASS=secret", "SUBJECT=auth plain")...); out != "sent\n" {
		t.Fatalf("smtplib: %q", out)
	}
	m := pf.Sink.WaitMessage(t, pfSubject("auth plain"))
	if want := "Received: from client.test (unknown [127.0.0.2])\r\n\t(Authenticated sender: alice@a.test)\r\n\tby postfix.test (Postfix) with ESMTPA id "; !bytes.HasPrefix(m.Data, []byte(want)) {
		t.Errorf("relayed message:\n%s\nwant it to start %q", m.Data, want)
	}
	pf.WaitLog(t, `client=unknown\[127\.0\.0\.2\], sasl_method=PLAIN, sasl_username=alice@a\.test$`)

	before := len(pf.Sink.Messages())
	if out := python(t, smtplibSend, append(env, "PASS=wrong", "SUBJECT=wrong password")...); out != "535 5.7.8 Authentication credentials invalid\n" {
		t.Errorf("wrong password: smtplib printed %q", out)
	}
	pf.WaitLog(t, `warning: unknown\[127\.0\.0\.2\]: SASL PLAIN authentication failed`)
	if n := len(pf.Sink.Messages()); n != before {
		t.Errorf("%d messages relayed after a wrong password", n-before)
	}
}

// TestPostfixTLS: the proxy reaches Postfix by STARTTLS (and by implicit
// TLS) with the certificate verified against the backend CA; a Postfix
// whose certificate another CA signed is refused before any credential
// is sent, and the client gets the proxy's 454 4.7.0.
func TestPostfixTLS(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		SASL: true, Users: map[string]string{"alice@a.test": "secret", "bob@a.test": "pw"}, CertFile: cert, KeyFile: key,
	})
	cert2, key2 := other.Issue(t, "127.0.0.1", "localhost")
	stranger := testenv.StartPostfix(t, testenv.PostfixOptions{
		SASL: true, Users: map[string]string{"alice@b.test": "secret"}, CertFile: cert2, KeyFile: key2,
	})
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router: newRoutes(t, map[string][]string{
			"alice@a.test": {"submission+starttls://" + pf.Addr + "?server_name=localhost"},
			"bob@a.test":   {"submissions://" + pf.TLSAddr + "?server_name=localhost"},
			"@b.test":      {"submission+starttls://" + stranger.Addr + "?server_name=localhost"},
		}),
		BackendTLS:         &tls.Config{RootCAs: ca.Pool()},
		AllowPlaintextAuth: true,
	}})

	t.Run("starttls", func(t *testing.T) {
		c := dialRaw(t, "127.0.0.2", p.addr)
		c.reply()
		c.send("EHLO client.test\r\n")
		c.reply()
		c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.7.0 Authentication successful")
		pfTransaction(c, "over starttls")
		m := pf.Sink.WaitMessage(t, pfSubject("over starttls"))
		// S: TLS between the proxy and Postfix; A: logged in.
		if !bytes.Contains(m.Data, []byte("(Postfix) with ESMTPSA id ")) || !bytes.Contains(m.Data, []byte("(using TLSv1.3 with cipher ")) {
			t.Errorf("relayed message:\n%s\nwant ESMTPSA and TLSv1.3 in Received", m.Data)
		}
	})
	t.Run("implicit tls", func(t *testing.T) {
		c := dialRaw(t, "127.0.0.2", p.addr)
		c.reply()
		c.send("EHLO client.test\r\n")
		c.reply()
		c.cmd("AUTH PLAIN "+plain("", "bob@a.test", "pw"), "235 2.7.0 Authentication successful")
		c.cmd("MAIL FROM:<bob@a.test>", "250 2.1.0 Ok")
		c.cmd("RCPT TO:<carol@c.test>", "250 2.1.5 Ok")
		c.cmd("DATA", "354 End data with <CR><LF>.<CR><LF>")
		c.send("From: bob@a.test\r\nSubject: over implicit tls\r\n\r\nhello\r\n.\r\n")
		if r := c.reply(); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as ") {
			t.Fatalf("end of DATA: %q", r)
		}
		m := pf.Sink.WaitMessage(t, pfSubject("over implicit tls"))
		if !bytes.Contains(m.Data, []byte("(Authenticated sender: bob@a.test)\r\n\tby postfix.test (Postfix) with ESMTPSA id ")) {
			t.Errorf("relayed message:\n%s\nwant bob's ESMTPSA in Received", m.Data)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		c := dialRaw(t, "127.0.0.3", p.addr)
		c.reply()
		c.send("EHLO client.test\r\n")
		c.reply()
		c.send("AUTH PLAIN " + plain("", "alice@b.test", "secret") + "\r\n")
		if r := c.reply(); !strings.HasPrefix(r, "454 4.7.0 ") {
			t.Errorf("backend certificate from an unknown CA: %q, want 454 4.7.0", r)
		}
		// The handshake failed on the proxy's side: Postfix saw no
		// AUTH and relayed nothing.
		stranger.WaitLog(t, `disconnect from unknown\[127\.0\.0\.1\] ehlo=1 starttls=0/1 commands=1/2$`)
		if l, err := stranger.FindLog(`sasl_|\bauth=|authentication`, 0); err == nil {
			t.Errorf("Postfix with the unknown certificate saw a login: %s", l)
		}
		if n := len(stranger.Sink.Messages()); n != 0 {
			t.Errorf("%d messages relayed", n)
		}
	})
}

// pfTransaction sends one message with subject from alice@a.test to
// carol@c.test on a logged-in raw client.
func pfTransaction(c *rawClient, subject string) {
	c.t.Helper()
	c.cmd("MAIL FROM:<alice@a.test>", "250 2.1.0 Ok")
	c.cmd("RCPT TO:<carol@c.test>", "250 2.1.5 Ok")
	c.cmd("DATA", "354 End data with <CR><LF>.<CR><LF>")
	c.send("From: alice@a.test\r\nSubject: " + subject + "\r\n\r\nhello\r\n.\r\n")
	if r := c.reply(); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as ") {
		c.t.Fatalf("end of DATA: %q", r)
	}
}

// TestPostfixPipe: after the login the client talks to Postfix through
// the pipe. Its EHLO is answered by Postfix (CHUNKING, and SIZE from
// message_size_limit); a pipelined transaction, a BDAT one sent in one
// write with its chunk, and Postfix's refusals of an over-size message
// (declared with SIZE=, or found while reading BDAT chunks) reach the
// client as Postfix sent them, and only the accepted messages are
// relayed.
func TestPostfixPipe(t *testing.T) {
	const limit = 2048
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{
		SASL: true, Users: map[string]string{"alice@a.test": "secret"}, MessageSizeLimit: limit,
	})
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router:             newRoutes(t, map[string][]string{"@a.test": {"submission://" + pf.Addr}}),
		AllowPlaintextAuth: true,
	}})
	c := dialRaw(t, "127.0.0.2", p.addr)
	c.reply()
	c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN")
	c.cmd("AUTH PLAIN "+plain("", "alice@a.test", "secret"), "235 2.7.0 Authentication successful")
	c.send("EHLO client.test\r\n")
	ehlo := c.reply()
	for _, want := range []string{"250-postfix.test\n", "\n250-PIPELINING\n", "\n250-SIZE 2048\n", "\n250 CHUNKING"} {
		if !strings.Contains(ehlo, want) {
			t.Errorf("EHLO after AUTH lacks %q:\n%s", want, ehlo)
		}
	}

	// PIPELINING: three commands in one write, three replies.
	c.send("MAIL FROM:<alice@a.test> SIZE=200\r\nRCPT TO:<carol@c.test>\r\nDATA\r\n")
	for _, want := range []string{"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"} {
		if r := c.reply(); r != want {
			t.Fatalf("pipelined: got %q, want %q", r, want)
		}
	}
	c.send("Subject: pipelined\r\n\r\nhello\r\n.\r\n")
	if r := c.reply(); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as ") {
		t.Fatalf("end of DATA: %q", r)
	}

	// CHUNKING: the envelope and a BDAT LAST with its chunk in one write.
	text := strings.Repeat("x", 300) + "\r\n"
	body := "Subject: chunked\r\n\r\n" + text
	c.send("MAIL FROM:<alice@a.test> BODY=8BITMIME\r\nRCPT TO:<carol@c.test>\r\nBDAT " + strconv.Itoa(len(body)) + " LAST\r\n" + body)
	for _, want := range []string{"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: " + strconv.Itoa(len(body)) + " bytes queued as "} {
		if r := c.reply(); !strings.HasPrefix(r, want) {
			t.Fatalf("BDAT transaction: got %q, want %q...", r, want)
		}
	}
	for _, s := range []string{"pipelined", "chunked"} {
		m := pf.Sink.WaitMessage(t, pfSubject(s))
		if !bytes.Contains(m.Data, []byte("(Authenticated sender: alice@a.test)")) {
			t.Errorf("%s: relayed message lacks the login:\n%s", s, m.Data)
		}
		if s == "chunked" && !bytes.HasSuffix(m.Data, []byte("\r\n\r\n"+text)) {
			t.Errorf("chunked: relayed message does not end with the chunk's text:\n%q", m.Data)
		}
	}
	relayed := len(pf.Sink.Messages())

	// Over the limit: declared, then found in the chunks.
	c.cmd("MAIL FROM:<alice@a.test> SIZE=5000", "552 5.3.4 Message size exceeds fixed limit")
	c.cmd("RSET", "250 2.0.0 Ok") // Postfix keeps the refused SIZE= for the next MAIL until RSET
	c.cmd("MAIL FROM:<alice@a.test>", "250 2.1.0 Ok")
	c.cmd("RCPT TO:<carol@c.test>", "250 2.1.5 Ok")
	chunk := strings.Repeat("y", limit)
	c.send("BDAT " + strconv.Itoa(len(chunk)) + "\r\n" + chunk)
	if r := c.reply(); r != "552 5.3.4 Error: message file too big" {
		t.Errorf("BDAT over the limit: %q", r)
	}
	c.cmd("QUIT", "221 2.0.0 Bye")
	pf.WaitLog(t, `disconnect from unknown\[127\.0\.0\.2\] ehlo=3 xclient=0/1 auth=1 mail=3/4 rcpt=3 data=1 bdat=1/2 rset=1 quit=1`)
	if n := len(pf.Sink.Messages()); n != relayed {
		t.Errorf("%d over-size messages relayed", n-relayed)
	}
}
