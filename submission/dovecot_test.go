package submission_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/submission"
)

// TestDovecot runs the proxy in front of a real Dovecot submission
// service (which relays to an in-process SMTP sink), trusting the proxy's
// 127.0.0.1 for XCLIENT; clients come from other loopback addresses so
// that the address Dovecot logs tells the client's from the proxy's.
func TestDovecot(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users:           map[string]string{"alice@a.test": "secret", "bob@b.test": "pw", "eve@a.test": "right"},
		TrustedNetworks: []string{"127.0.0.1/32"},
		CertFile:        cert, KeyFile: key,
		Protocols: []string{testenv.Submission},
	})
	rt := newRoutes(t, map[string][]string{
		"@a.test": {"submission+starttls://" + d.SubmissionAddr + "?server_name=localhost"}, // STARTTLS, XCLIENT by default
		"@b.test": {"submissions://" + d.SubmissionTLSAddr + "?server_name=localhost"},      // implicit TLS
	})
	p := startProxy(t, &submission.Server{Server: gateway.Server{
		Router:             rt,
		TLSConfig:          &tls.Config{Certificates: []tls.Certificate{ca.IssueCert(t, "127.0.0.1", "localhost")}},
		BackendTLS:         &tls.Config{RootCAs: ca.Pool()},
		AllowPlaintextAuth: true, // for the raw clients below; smtplib uses TLS
	}})

	t.Run("smtplib", func(t *testing.T) {
		out := python(t, smtplibScript, "CA="+ca.CertFile(t), "PLAIN="+p.addr, "TLS="+p.tlsAddr)
		if want := "starttls sent\nsubmissions sent\n"; out != want {
			t.Fatalf("smtplib printed %q, want %q", out, want)
		}
		for _, tc := range []struct{ via, user string }{{"starttls", "alice@a.test"}, {"submissions", "bob@b.test"}} {
			m := d.Sink.WaitMessage(t, func(m testenv.SinkMessage) bool {
				return bytes.Contains(m.Data, []byte("Subject: via "+tc.via+"\r\n"))
			})
			if m.From != tc.user || len(m.To) != 1 || m.To[0] != "carol@c.test" {
				t.Errorf("%s: envelope from %q to %q", tc.via, m.From, m.To)
			}
			// XCLIENT gave Dovecot the client's address and EHLO name.
			if !bytes.HasPrefix(m.Data, []byte("Received: from client.test ([127.0.0.2])\r\n\tby dovecot.test with ESMTPSA")) {
				t.Errorf("%s: the relayed message does not name the client:\n%s", tc.via, m.Data)
			}
		}
		d.WaitLog(t, `submission-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.2, .*TLS`)
		d.WaitLog(t, `submission-login: Info: Login: user=<bob@b.test>, method=PLAIN, rip=127\.0\.0\.2, .*TLS`)
	})

	t.Run("capabilities after AUTH", func(t *testing.T) {
		c := dialRaw(t, "127.0.0.8", p.addr)
		c.reply()
		c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-STARTTLS\n250 AUTH PLAIN LOGIN")
		c.send("AUTH PLAIN " + plain("", "alice@a.test", "secret") + "\r\n")
		if r := c.reply(); r != "235 2.7.0 Logged in." {
			t.Fatalf("AUTH: %q, want Dovecot's own 235", r)
		}
		// The client's EHLO after AUTH is answered by Dovecot: the
		// capabilities after login are the backend's.
		c.send("EHLO client.test\r\n")
		if r := c.reply(); !strings.HasPrefix(r, "250-dovecot.test") || !strings.Contains(r, "\n250-BURL imap") {
			t.Errorf("EHLO after AUTH: %q", r)
		}
		c.cmd("QUIT", "221 2.0.0 Bye")
		d.WaitLog(t, `submission-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.8, .*TLS`)
	})

	t.Run("wrong password", func(t *testing.T) {
		c := dialRaw(t, "127.0.0.5", p.addr)
		c.reply()
		c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-STARTTLS\n250 AUTH PLAIN LOGIN")
		c.cmd("MAIL FROM:<eve@a.test>", "530 5.7.0 Authentication required")
		c.cmd("AUTH PLAIN "+plain("", "eve@a.test", "wrong"), "535 5.7.8 Authentication credentials invalid")
		d.WaitLog(t, `submission-login: Info: .*user=<eve@a.test>, method=PLAIN, rip=127\.0\.0\.5`)
	})

	t.Run("name with NUL", func(t *testing.T) {
		before := rt.lookups()
		c := dialRaw(t, "127.0.0.6", p.addr)
		c.reply()
		c.cmd("EHLO client.test", "250-gw.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-STARTTLS\n250 AUTH PLAIN LOGIN")
		c.cmd("AUTH LOGIN "+b64("bob@b.test\x00alice@a.test"), "334 UGFzc3dvcmQ6")
		c.cmd(b64("pw"), "535 5.7.8 Invalid characters in the user name")
		if n := rt.lookups() - before; n != 0 {
			t.Errorf("%d route lookups for a name with NUL", n)
		}
		if _, err := d.FindLog(`rip=127\.0\.0\.6`, 0); err == nil {
			t.Errorf("Dovecot saw the session:\n%s", d.Log())
		}
	})
}

const smtplibScript = `
import os, smtplib, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
def hp(v):
    h, p = v.rsplit(":", 1)
    return h, int(p)
src = ("127.0.0.2", 0)
def send(s, user, pw, via):
    s.user, s.password = user, pw
    code, _ = s.auth("PLAIN", s.auth_plain)
    assert code == 235, code
    s.sendmail(user, ["carol@c.test"], "From: %s\r\nTo: carol@c.test\r\nSubject: via %s\r\n\r\nhello\r\n" % (user, via))
    s.quit()
    print(via, "sent")
s = smtplib.SMTP(*hp(os.environ["PLAIN"]), local_hostname="client.test", source_address=src, timeout=10)
s.ehlo(); s.starttls(context=ctx); s.ehlo()
send(s, "alice@a.test", "secret", "starttls")
s = smtplib.SMTP_SSL(*hp(os.environ["TLS"]), local_hostname="client.test", source_address=src, context=ctx, timeout=10)
s.ehlo()
send(s, "bob@b.test", "pw", "submissions")
`

// python runs script with python3 and the given environment additions and
// returns its standard output; it fails the test on a non-zero exit.
func python(t *testing.T, script string, env ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, "python3", "python3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", script)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s%s", err, out, stderr.String())
	}
	return string(out)
}
