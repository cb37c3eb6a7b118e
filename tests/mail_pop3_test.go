package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// poplibScript logs in with python3's poplib from 127.0.0.2 and prints
// the message count. argv: host port mode(stls|ssl) cafile user password.
const poplibScript = `
import poplib, socket, ssl, sys
host, port, mode, ca, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names 127.0.0.1 and localhost; verified against the CA
def from2(self, timeout):
    return socket.create_connection((self.host, self.port), timeout, source_address=("127.0.0.2", 0))
if mode == "ssl":
    class C(poplib.POP3_SSL):
        def _create_socket(self, timeout):
            return self.context.wrap_socket(from2(self, timeout))
    c = C(host, port, context=ctx, timeout=20)
else:
    class C(poplib.POP3):
        _create_socket = from2
    c = C(host, port, timeout=20)
    c.stls(context=ctx)
c.user(user)
c.pass_(pw)
print("count", c.stat()[0])
c.quit()
`

// TestMailPOP3 runs `pipegate mail` with an IMAP and two POP3 listeners
// (STLS offered, implicit TLS) in front of real Dovecot, routes alice's
// IMAP and POP3 to one host, and reads her mailbox with python3's poplib;
// Dovecot logs the client's address (127.0.0.2), passed by XCLIENT.
func TestMailPOP3(t *testing.T) {
	py := testenv.LookPath(t, "python3", "python3")
	testenv.LookPath(t, "dovecot", "dovecot-pop3d")
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "pop3.backend.test")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{Users: backend1Users, Messages: allMessages(backend1Users),
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key,
		Protocols: []string{testenv.IMAP, testenv.POP3}})
	dir := t.TempDir()
	writeFile(t, dir+"/routes.yaml", fmt.Sprintf(`routes:
  - account: alice@a.test
    backends: [imap://%s, "pop3+starttls://%s?server_name=pop3.backend.test"]
  - account: carol@a.test
    backends: ["pop3s://%s?server_name=pop3.backend.test"]
`, d.Addr, d.POP3Addr, d.POP3TLSAddr))
	pcert, pkey := ca.Issue(t, "127.0.0.1", "localhost")
	imapAddr, stls, implicit := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	startMail(t, dir, fmt.Sprintf(`listen:
  - addr: %s
  - addr: %s
    protocol: pop3
  - addr: %s
    protocol: pop3
    tls: true
tls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: routes.yaml
drain_timeout: 5s
`, imapAddr, stls, implicit, pcert, pkey, ca.CertFile(t)), []string{"alice-secret", "carol-secret"}, imapAddr, stls, implicit)

	for _, tc := range []struct{ account, addr, mode string }{
		{"alice@a.test", stls, "stls"},
		{"alice@a.test", implicit, "ssl"},
		{"carol@a.test", stls, "stls"},
	} {
		host, port := hostPort(t, tc.addr)
		out, err := exec.Command(py, "-c", poplibScript, host, port, tc.mode, ca.CertFile(t), tc.account, backend1Users[tc.account]).CombinedOutput()
		if err != nil {
			t.Fatalf("%s over %s: poplib: %v\n%s", tc.account, tc.mode, err, out)
		}
		if want := fmt.Sprintf("count %d", messageCount[tc.account]); !strings.Contains(string(out), want) {
			t.Fatalf("%s over %s: %q, want %q", tc.account, tc.mode, out, want)
		}
	}
	logs, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, "pop3-login") && strings.Contains(line, "Login: user=<") && !strings.Contains(line, "rip=127.0.0.2") {
			t.Errorf("Dovecot logged a POP3 login without the client's address (XCLIENT):\n%s", line)
		}
	}
	if n := strings.Count(string(logs), "pop3-login: Info: Login: user=<"); n != 3 {
		t.Errorf("%d POP3 logins in Dovecot's log, want 3:\n%s", n, logs)
	}
}
