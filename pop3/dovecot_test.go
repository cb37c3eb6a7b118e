package pop3_test

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
	"github.com/pipegate/pipegate/pop3"
)

// TestDovecot runs the proxy in front of a real Dovecot POP3 server that
// trusts the proxy's address (127.0.0.1) for XCLIENT. Each client connects
// from its own loopback address, so that Dovecot's log (rip=) tells the
// client's address from the proxy's, and so that its auth penalty after
// the wrong password touches no other subtest.
func TestDovecot(t *testing.T) {
	pki := newPKI(t)
	certFile, keyFile := pki.ca.Issue(t, "127.0.0.1", "localhost")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{
		Users: map[string]string{"alice@a.test": "secret", "bob@a.test": "pw-bob"},
		Messages: map[string][]string{"alice@a.test": {
			"Subject: one\r\n\r\nhello\r\n",
			"Subject: two\r\n\r\n.dot-stuffed\r\n",
		}},
		TrustedNetworks: []string{"127.0.0.1/32"},
		CertFile:        certFile, KeyFile: keyFile,
		Protocols: []string{testenv.POP3},
	})
	backendTLS := &tls.Config{RootCAs: pki.ca.Pool()}
	newProxy := func(backendURL string, plaintext bool) (*proxy, *counting) {
		r := routes(t, map[string][]string{"@a.test": {backendURL}})
		return startProxy(t, &pop3.Server{Server: gateway.Server{
			Router:             r,
			TLSConfig:          pki.server,
			BackendTLS:         backendTLS,
			AllowPlaintextAuth: plaintext,
		}}), r
	}
	p, r := newProxy("pop3://"+d.POP3Addr, true)

	t.Run("USER PASS STAT RETR", func(t *testing.T) {
		c := dial(t, "127.0.0.2", p.addr)
		c.cmd("USER alice@a.test")
		if l := c.cmd("PASS secret"); l != "+OK Logged in." {
			t.Fatalf("login: %q", l)
		}
		if l := c.cmd("STAT"); !strings.HasPrefix(l, "+OK 2 ") {
			t.Fatalf("STAT: %q", l)
		}
		if list := c.multi("LIST"); len(list) != 2 {
			t.Fatalf("LIST: %q", list)
		}
		if msg := strings.Join(c.multi("RETR 2"), "\n"); !strings.Contains(msg, "Subject: two\n\n.dot-stuffed") {
			t.Fatalf("RETR 2: %q", msg)
		}
		if caps := c.multi("CAPA"); !contains(caps, "UIDL") || contains(caps, "USER") {
			t.Fatalf("CAPA after login is not the backend's: %q", caps)
		}
		c.send("QUIT\r\n")
		c.expect("+OK")
		d.WaitLog(t, `pop3-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.2, lip=127\.0\.0\.1, .*session=<[0-9a-f]{16}>`)
	})

	t.Run("AUTH PLAIN", func(t *testing.T) {
		c := dial(t, "127.0.0.3", p.addr)
		if l := c.cmd("AUTH PLAIN " + b64("\x00alice@a.test\x00secret")); l != "+OK Logged in." {
			t.Fatalf("initial response: %q", l)
		}
		c2 := dial(t, "127.0.0.4", p.addr)
		c2.send("AUTH PLAIN\r\n")
		c2.expect("+ ")
		if l := c2.cmd(b64("\x00alice@a.test\x00secret")); l != "+OK Logged in." {
			t.Fatalf("continuation: %q", l)
		}
		if l := c2.cmd("STAT"); !strings.HasPrefix(l, "+OK 2 ") {
			t.Fatalf("STAT: %q", l)
		}
		d.WaitLog(t, `pop3-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.3, `)
		d.WaitLog(t, `pop3-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=127\.0\.0\.4, `)
	})

	t.Run("wrong password and unknown account", func(t *testing.T) {
		c := dial(t, "127.0.0.9", p.addr)
		c.cmd("USER alice@a.test")
		if l := c.cmd("PASS wrong"); l != "-ERR [AUTH] Authentication failed." {
			t.Fatalf("wrong password: %q", l)
		}
		c.cmd("USER alice@unrouted.test")
		if l := c.cmd("PASS secret"); l != "-ERR [AUTH] Authentication failed." {
			t.Fatalf("unknown route: %q", l)
		}
		d.WaitLog(t, `pop3-login: Info: .*auth failed.*user=<alice@a\.test>.*rip=127\.0\.0\.9`)
	})

	t.Run("NUL split refused before routing", func(t *testing.T) {
		before := r.lookups.Load()
		c := dial(t, "127.0.0.10", p.addr)
		c.send("AUTH LOGIN " + b64("bob@a.test\x00alice@a.test") + "\r\n")
		c.expect("+ ")
		if l := c.cmd(b64("pw-bob")); l != "-ERR [AUTH] Invalid characters in the user name" {
			t.Fatalf("got %q", l)
		}
		c.send("USER bob@a.test\x00alice@a.test\r\n")
		c.expect("-ERR Invalid character 0x00")
		if n := r.lookups.Load() - before; n != 0 {
			t.Fatalf("%d route lookups", n)
		}
		if strings.Contains(d.Log(), "user=<bob@a.test>") {
			t.Fatalf("Dovecot saw bob:\n%s", d.Log())
		}
	})

	t.Run("STLS to the proxy", func(t *testing.T) {
		c := dial(t, "127.0.0.5", p.addr)
		c.send("STLS\r\n")
		c.expect("+OK")
		c.startTLS(pki.client)
		c.cmd("USER alice@a.test")
		if l := c.cmd("PASS secret"); l != "+OK Logged in." {
			t.Fatalf("login: %q", l)
		}
		before := r.lookups.Load()
		c2 := dial(t, "127.0.0.6", p.addr)
		c2.send("STLS\r\nUSER alice@a.test\r\nPASS secret\r\n")
		c2.expect("+OK Begin TLS")
		if rest := c2.expectClosed(); len(rest) > 0 {
			t.Fatalf("after pipelined STLS: %q", rest)
		}
		if n := r.lookups.Load() - before; n != 0 {
			t.Fatalf("pipelined commands after STLS ran: %d route lookups", n)
		}
	})

	t.Run("plaintext refused", func(t *testing.T) {
		strict, _ := newProxy("pop3://"+d.POP3Addr, false)
		c := dial(t, "127.0.0.11", strict.addr)
		if l := c.cmd("USER alice@a.test"); l != "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections" {
			t.Fatalf("USER: %q", l)
		}
		c.send("STLS\r\n")
		c.expect("+OK")
		c.startTLS(pki.client)
		c.cmd("USER alice@a.test")
		if l := c.cmd("PASS secret"); l != "+OK Logged in." {
			t.Fatalf("login after STLS: %q", l)
		}
	})

	t.Run("backend STLS and pop3s", func(t *testing.T) {
		for i, url := range []string{"pop3+starttls://" + d.POP3Addr, "pop3s://" + d.POP3TLSAddr} {
			bp, _ := newProxy(url, true)
			src := []string{"127.0.0.12", "127.0.0.13"}[i]
			c := dial(t, src, bp.addr)
			c.cmd("USER alice@a.test")
			if l := c.cmd("PASS secret"); l != "+OK Logged in." {
				t.Fatalf("%s: login: %q", url, l)
			}
			d.WaitLog(t, `pop3-login: Info: Login: user=<alice@a.test>, method=PLAIN, rip=`+strings.ReplaceAll(src, ".", `\.`)+`, lip=127\.0\.0\.1, .*TLS`)
		}
	})

	t.Run("python3 poplib", func(t *testing.T) {
		out := python(t, poplibScript, "CA="+pki.ca.CertFile(t), "PLAIN="+p.addr, "TLS="+p.tlsAddr, "USER=alice@a.test", "PASS=secret")
		if want := "stls 2 b'Subject: one'\npop3s 2 b'Subject: one'\n"; out != want {
			t.Fatalf("poplib printed %q, want %q", out, want)
		}
	})
}

const poplibScript = `
import os, poplib, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
def hp(v):
    h, p = v.rsplit(":", 1)
    return h, int(p)
def session(p, via):
    assert "STLS" not in p.capa() or via == "stls"
    p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
    n = p.stat()[0]
    print(via, n, p.retr(1)[1][0]); p.quit()
p = poplib.POP3(*hp(os.environ["PLAIN"]), timeout=10)
p.stls(context=ctx)
session(p, "stls")
session(poplib.POP3_SSL(*hp(os.environ["TLS"]), context=ctx, timeout=10), "pop3s")
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
