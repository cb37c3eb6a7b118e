package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipegate/pipegate/internal/testenv"
	"github.com/pipegate/pipegate/internal/tlstest"
)

// longPassFront (users with long passwords): one Dovecot with all four protocols and one pipegate mail
// with a plain (STARTTLS) and an implicit TLS listener per protocol.
type longPassFront struct {
	d      *testenv.Dovecot
	pg     *mailProc
	caFile string
	dir    string
	addrs  map[string]string // "imap", "imaps", "pop3", "pop3s", "submission", "submissions", "sieve"
	direct map[string]string
}

func startLongPassFront(t *testing.T, extra string, dovecotExtra ...string) *longPassFront {
	t.Helper()
	for _, p := range []string{"dovecot-imapd", "dovecot-pop3d", "dovecot-submissiond", "dovecot-managesieved"} {
		testenv.LookPath(t, "dovecot", p)
	}
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1", "localhost", "backend.test")
	d := testenv.StartDovecot(t, testenv.DovecotOptions{Users: longPassUsers(), Messages: allMessages(backend1Users),
		TrustedNetworks: []string{"127.0.0.1/32"}, CertFile: cert, KeyFile: key,
		Protocols: []string{testenv.IMAP, testenv.POP3, testenv.Submission, testenv.Sieve}, Extra: strings.Join(dovecotExtra, "\n")})
	dir := t.TempDir()
	dead := testenv.FreeAddr(t) // nothing listens there
	writeFile(t, filepath.Join(dir, "routes.yaml"), fmt.Sprintf(`routes:
  - account: dead@a.test
    backends: [imap://`+dead+`, pop3://`+dead+`, submission://`+dead+`, sieve://`+dead+`]
default: ["imap+starttls://%s?server_name=backend.test", "pop3+starttls://%s?server_name=backend.test", "submission+starttls://%s?server_name=backend.test", "sieve+starttls://%s?server_name=backend.test"]
`, d.Addr, d.POP3Addr, d.SubmissionAddr, d.SieveAddr))
	pcert, pkey := ca.Issue(t, "localhost", "127.0.0.1")
	f := &longPassFront{d: d, caFile: ca.CertFile(t), dir: dir, addrs: map[string]string{}, direct: map[string]string{
		"imap": d.Addr, "imaps": d.TLSAddr, "pop3": d.POP3Addr, "pop3s": d.POP3TLSAddr,
		"submission": d.SubmissionAddr, "submissions": d.SubmissionTLSAddr, "sieve": d.SieveAddr}}
	cfg := "listen:\n"
	var all []string
	for _, l := range []struct {
		name, proto string
		tls         bool
	}{
		{"imap", "imap", false}, {"imaps", "imap", true}, {"pop3", "pop3", false}, {"pop3s", "pop3", true},
		{"submission", "submission", false}, {"submissions", "submission", true}, {"sieve", "sieve", false}} {
		a := testenv.FreeAddr(t)
		f.addrs[l.name] = a
		all = append(all, a)
		cfg += fmt.Sprintf("  - addr: %s\n    protocol: %s\n    tls: %v\n", a, l.proto, l.tls)
	}
	cfg += fmt.Sprintf("tls:\n  cert: %s\n  key: %s\nbackend_tls:\n  ca: %s\nroutes_file: routes.yaml\ndrain_timeout: 5s\n%s", pcert, pkey, f.caFile, extra)
	f.pg = startMail(t, dir, cfg, []string{"alice-secret"}, all...)
	return f
}

// longPassUsers: the accounts of backend 1, and some with passwords of
// 300 to 4000 bytes, as tokens used as passwords are.
func longPassUsers() map[string]string {
	m := map[string]string{}
	for _, n := range []int{300, 1000, 2000, 4000} {
		m[fmt.Sprintf("long%d@a.test", n)] = longPassword(n)
	}
	for k, v := range backend1Users {
		m[k] = v
	}
	return m
}

// longPassword is a password of n bytes.
func longPassword(n int) string { return strings.Repeat("Ab3-", n/4) }
