package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// TestMailSieve runs `pipegate mail` with a ManageSieve listener in front
// of Dovecot's managesieve, uploads and activates a script with
// sieve-connect through pipegate (STARTTLS, then AUTHENTICATE), and reads
// it back from Dovecot directly.
func TestMailSieve(t *testing.T) {
	testenv.LookPath(t, "sieve-connect", "sieve-connect")
	testenv.LookPath(t, "dovecot", "dovecot-managesieved")
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "sieve.backend.test")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{Users: backend1Users,
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key,
		Protocols: []string{testenv.IMAP, testenv.Sieve}})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "routes.yaml"), fmt.Sprintf("routes:\n  - domain: a.test\n    backends: [imap://%s, \"sieve+starttls://%s?server_name=sieve.backend.test\"]\n", d.Addr, d.SieveAddr))
	pcert, pkey := ca.Issue(t, "127.0.0.1", "localhost")
	addr := testenv.FreeAddr(t)
	startMail(t, dir, fmt.Sprintf(`listen:
  - addr: %s
    protocol: sieve
tls:
  cert: %s
  key: %s
backend_tls:
  ca: %s
routes_file: routes.yaml
drain_timeout: 5s
`, addr, pcert, pkey, ca.CertFile(t)), []string{"alice-secret"}, addr)

	script := "require \"fileinto\";\nif header :contains \"subject\" \"pipegate\" { fileinto \"INBOX.pipegate\"; }\n"
	local := filepath.Join(dir, "local.sieve")
	writeFile(t, local, script)
	sieveConnect := func(target, tlsName string, args ...string) string {
		t.Helper()
		sc := testenv.SieveConnect{Addr: target, User: "alice@a.test", Password: "alice-secret",
			CAFile: ca.CertFile(t), TLSName: tlsName, Extra: []string{"--ignoreserverversion"}}
		return sc.Run(t, args...)
	}
	sieveConnect(addr, "localhost", "--upload", "--localsieve", local, "--remotesieve", "pipegate")
	sieveConnect(addr, "localhost", "--activate", "--remotesieve", "pipegate")

	back := filepath.Join(dir, "back.sieve")
	sieveConnect(d.SieveAddr, "sieve.backend.test", "--download", "--remotesieve", "pipegate", "--localsieve", back)
	if list := sieveConnect(d.SieveAddr, "sieve.backend.test", "--list"); !strings.Contains(list, "pipegate") || !strings.Contains(list, "ACTIVE") {
		t.Errorf("Dovecot's list does not show pipegate active:\n%s", list)
	}
	got, err := os.ReadFile(back)
	if err != nil || strings.TrimSpace(string(got)) != strings.TrimSpace(script) {
		t.Fatalf("read back from Dovecot: %v\n%q\nwant\n%q", err, got, script)
	}
}
