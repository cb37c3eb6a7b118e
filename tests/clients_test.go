package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
)

// imaplibScript logs in with python3's imaplib (implicit TLS, then
// STARTTLS on the plain port) and prints "<mode> <count>" per login.
const imaplibScript = `
import imaplib, ssl, sys
host, tls_port, plain_port, cafile, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the certificate names 127.0.0.1 as an IP SAN
m = imaplib.IMAP4_SSL(host, int(tls_port), ssl_context=ctx, timeout=15)
m.login(user, password)
typ, data = m.select("INBOX")
print("tls", int(data[0]))
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("subject", data[0][1].decode().strip())
m.logout()
m = imaplib.IMAP4(host, int(plain_port), timeout=15)
m.starttls(ssl_context=ctx)
m.login(user, password)
typ, data = m.select("INBOX")
print("starttls", int(data[0]))
m.logout()
`

// TestPythonImaplib: python3's imaplib over implicit TLS and STARTTLS.
func TestPythonImaplib(t *testing.T) {
	py := testenv.LookPath(t, "python3", "python3")
	e := newEnv(t, envOptions{})
	script := filepath.Join(e.dir, "client.py")
	writeFile(t, script, imaplibScript)
	_, tlsPort := hostPort(t, e.tlsAddr)
	_, plainPort := hostPort(t, e.plainAddr)
	for _, account := range []string{"alice@a.test", "bob@b.test"} {
		out, err := exec.Command(py, script, "127.0.0.1", tlsPort, plainPort, e.caFile, account, password(account)).CombinedOutput()
		if err != nil {
			t.Fatalf("imaplib %s: %v\n%s", account, err, out)
		}
		n := messageCount[account]
		want := fmt.Sprintf("tls %d\nsubject Subject: message 1 for %s\nstarttls %d\n", n, account, n)
		if string(out) != want {
			t.Fatalf("imaplib %s printed:\n%s\nwant:\n%s", account, out, want)
		}
	}
}

// TestCurl: curl over imaps (verifying the certificate) and over
// STARTTLS (--ssl-reqd).
func TestCurl(t *testing.T) {
	curl := testenv.LookPath(t, "curl", "curl")
	e := newEnv(t, envOptions{})
	for _, url := range []string{"imaps://" + e.tlsAddr + "/INBOX", "imap://" + e.plainAddr + "/INBOX"} {
		args := []string{"-sS", "--max-time", "15", "--cacert", e.caFile, "--interface", "127.0.0.2", "--url", url,
			"--user", "dave@b.test:" + password("dave@b.test"), "-X", "FETCH 1:* (FLAGS)"}
		if strings.HasPrefix(url, "imap:") {
			args = append(args, "--ssl-reqd")
		}
		out, err := exec.Command(curl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, out)
		}
		if got := strings.Count(string(out), " FETCH ("); got != messageCount["dave@b.test"] {
			t.Fatalf("curl %s: %d FETCH lines, want %d:\n%s", url, got, messageCount["dave@b.test"], out)
		}
	}
	e.d2.WaitLog(t, `Login: user=<dave@b.test>.*rip=127\.0\.0\.2,`)
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if _, err := strconv.Atoi(addr[i+1:]); i < 0 || err != nil {
		t.Fatalf("bad address %q", addr)
	}
	return addr[:i], addr[i+1:]
}
