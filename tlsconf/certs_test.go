package tlsconf

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipegate/pipegate/internal/tlstest"
	"github.com/pipegate/pipegate/tlsconf/internal/osslrsa"
)

// issueRSA makes a server certificate with key for hosts, signed by ca,
// and writes it and its key into t.TempDir().
func issueRSA(t *testing.T, ca *tlstest.CA, key *rsa.PrivateKey, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "rsa.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		writeFile(t, "rsa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048) // OpenSSL 3 refuses less at its default level
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// keyKind is "RSA" or "ECDSA", the kind of c's public key.
func keyKind(c *x509.Certificate) string {
	switch c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	}
	return "other"
}

func TestSeveralCertificatesECDSAFirst(t *testing.T) {
	ca := tlstest.NewCA(t)
	rsaCert, rsaKeyFile := issueRSA(t, ca, rsaKey(t), "127.0.0.1", "imap.test")
	ecCert, ecKey := ca.Issue(t, "127.0.0.1", "imap.test")
	// RSA written first, as an operator adding ECDSA to an RSA setup would.
	s, err := LoadServer(ServerFiles{Cert: rsaCert, Key: rsaKeyFile}.WithPairs(KeyPair{Cert: ecCert, Key: ecKey}))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range s.Certificates() {
		kinds = append(kinds, keyKind(c.Leaf))
	}
	if strings.Join(kinds, ",") != "ECDSA,RSA" {
		t.Fatalf("Certificates() kinds %v, want ECDSA then RSA", kinds)
	}
	served := s.Served()
	if len(served) != 2 || served[0].KeyType != "ECDSA P-256" || served[1].KeyType != "RSA 2048" ||
		served[1].File != rsaCert || served[0].Subject != "CN=127.0.0.1" || !served[1].Valid(time.Now()) {
		t.Fatalf("Served() = %+v", served)
	}
	if served[0].SignedBy != "" || served[1].SignedBy != RSASigner() {
		t.Errorf("SignedBy %q and %q, want none for ECDSA and %q for RSA", served[0].SignedBy, served[1].SignedBy, RSASigner())
	}
	rsaPriv := s.Certificates()[1].PrivateKey
	if _, viaOpenSSL := rsaPriv.(*osslrsa.Signer); viaOpenSSL != osslrsa.Available {
		t.Errorf("RSA key is a %T; libcrypto in this build: %v", rsaPriv, osslrsa.Available)
	}
	if got := s.String(); !strings.HasPrefix(got, "ECDSA P-256 CN=127.0.0.1 (imap.test, 127.0.0.1; until ") || !strings.Contains(got, ", RSA 2048 CN=") {
		t.Errorf("String() = %q", got)
	}
	addr := startTLS(t, s.Config())
	rsaOnly12 := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	for _, tt := range []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"Go default", &tls.Config{RootCAs: ca.Pool()}, "ECDSA"},
		{"Go default with name", &tls.Config{RootCAs: ca.Pool(), ServerName: "imap.test"}, "ECDSA"},
		{"TLS 1.2", &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12}, "ECDSA"},
		{"TLS 1.2 RSA suites only", &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12, CipherSuites: rsaOnly12}, "RSA"},
		{"TLS 1.2 RSA suites only, with name", &tls.Config{RootCAs: ca.Pool(), ServerName: "imap.test", MaxVersion: tls.VersionTLS12, CipherSuites: rsaOnly12}, "RSA"},
		// A name neither certificate has: crypto/tls alone would serve
		// Certificates[0] (ECDSA), which this client cannot use.
		{"TLS 1.2 RSA suites only, unknown name", &tls.Config{InsecureSkipVerify: true, ServerName: "other.test", MaxVersion: tls.VersionTLS12, CipherSuites: rsaOnly12}, "RSA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := dial(addr, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := keyKind(st.PeerCertificates[0]); got != tt.want {
				t.Errorf("served %s, want %s", got, tt.want)
			}
		})
	}
}

// TestOpenSSLClients checks with openssl s_client, whose signature
// algorithms can be restricted in TLS 1.3 (Go's client cannot), that an
// RSA-only client gets the RSA certificate and others the ECDSA one.
func TestOpenSSLClients(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("PIPEGATE_REQUIRE_REAL") == "1" {
			t.Fatalf("openssl not found: %v", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	ca := tlstest.NewCA(t)
	rsaCert, rsaKeyFile := issueRSA(t, ca, rsaKey(t), "127.0.0.1", "imap.test")
	ecCert, ecKey := ca.Issue(t, "127.0.0.1", "imap.test")
	s, err := LoadServer(ServerFiles{Cert: ecCert, Key: ecKey}.WithPairs(KeyPair{Cert: rsaCert, Key: rsaKeyFile}))
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, s.Config())
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"TLS 1.3 default", []string{"-tls1_3"}, "ECDSA"},
		{"TLS 1.3 RSA-PSS only", []string{"-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384"}, "RSA"},
		{"TLS 1.3 RSA-PSS only, with name", []string{"-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256", "-servername", "imap.test"}, "RSA"},
		{"TLS 1.3 RSA-PSS only, unknown name", []string{"-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256", "-servername", "other.test"}, "RSA"},
		{"TLS 1.3 ECDSA only", []string{"-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"}, "ECDSA"},
		{"TLS 1.2 RSA only", []string{"-tls1_2", "-sigalgs", "RSA+SHA256:RSA-PSS+SHA256"}, "RSA"},
		{"TLS 1.2 default", []string{"-tls1_2"}, "ECDSA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cert := sClientCert(t, openssl, addr, tt.args...)
			if got := keyKind(cert); got != tt.want {
				t.Errorf("served %s, want %s", got, tt.want)
			}
		})
	}
}

// sClientCert handshakes with addr by openssl s_client and returns the
// certificate the server sent.
func sClientCert(t *testing.T, openssl, addr string, args ...string) *x509.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, append([]string{"s_client", "-connect", addr}, args...)...)
	cmd.Stdin = strings.NewReader("") // EOF: s_client closes after the handshake
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl s_client %v: %v\n%s", args, err, stderr.Bytes())
	}
	block, _ := pem.Decode(out)
	if block == nil {
		t.Fatalf("openssl s_client %v: no certificate in output:\n%s\n%s", args, out, stderr.Bytes())
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestReloadSwapsEveryCertificate(t *testing.T) {
	ca := tlstest.NewCA(t)
	key := rsaKey(t)
	rsa1, rsaKey1 := issueRSA(t, ca, key, "127.0.0.1", "one.test")
	rsa2, rsaKey2 := issueRSA(t, ca, key, "127.0.0.1", "two.test")
	ec1, ecKey1 := ca.Issue(t, "127.0.0.1", "one.test")
	ec2, ecKey2 := ca.Issue(t, "127.0.0.1", "two.test")
	dir := t.TempDir()
	rsaFiles := KeyPair{Cert: filepath.Join(dir, "rsa.crt"), Key: filepath.Join(dir, "rsa.key")}
	ecFiles := KeyPair{Cert: filepath.Join(dir, "ec.crt"), Key: filepath.Join(dir, "ec.key")}
	install := func(rsaCert, rsaKey, ecCert, ecKey string) {
		copyFile(t, rsaFiles.Cert, rsaCert)
		copyFile(t, rsaFiles.Key, rsaKey)
		copyFile(t, ecFiles.Cert, ecCert)
		copyFile(t, ecFiles.Key, ecKey)
	}
	install(rsa1, rsaKey1, ec1, ecKey1)
	s, err := LoadServer(ServerFiles{Cert: rsaFiles.Cert, Key: rsaFiles.Key}.WithPairs(ecFiles))
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLS(t, s.Config())
	rsaClient := func(name string) *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), ServerName: name, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}
	}
	served := func(cfg *tls.Config) string {
		t.Helper()
		st, err := dial(addr, cfg)
		if err != nil {
			t.Fatalf("dial %s: %v", cfg.ServerName, err)
		}
		return keyKind(st.PeerCertificates[0]) + " " + st.PeerCertificates[0].DNSNames[0]
	}
	check := func(when, name string) {
		t.Helper()
		if got := served(&tls.Config{RootCAs: ca.Pool(), ServerName: name}); got != "ECDSA "+name {
			t.Errorf("%s: ECDSA client got %s", when, got)
		}
		if got := served(rsaClient(name)); got != "RSA "+name {
			t.Errorf("%s: RSA-only client got %s", when, got)
		}
	}
	check("before reload", "one.test")

	install(rsa2, rsaKey2, ec2, ecKey2)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	check("after reload", "two.test")
	for _, c := range s.Served() {
		if !strings.Contains(c.String(), "two.test") {
			t.Errorf("after reload, Served() has %s", c)
		}
	}

	// One pair broken: the reload fails naming it, and both old
	// certificates stay.
	install(rsa1, rsaKey1, ec1, ecKey2)
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), "certificate 2 of 2") || !strings.Contains(err.Error(), ecFiles.Key) {
		t.Fatalf("Reload with the ECDSA key mismatched: %v", err)
	}
	check("after a failed reload", "two.test")
}

func TestSeveralCertificatesErrors(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	cert2, key2 := ca.Issue(t, "127.0.0.1")
	notPEM := writeFile(t, "garbage.pem", []byte("hello\n"))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	base := ServerFiles{Cert: cert, Key: key}
	for _, tt := range []struct {
		name  string
		files ServerFiles
		want  []string
	}{
		{"second key mismatched", base.WithPairs(KeyPair{Cert: cert2, Key: key}), []string{"certificate 2 of 2: tls key " + key, "does not match", cert2}},
		{"second cert not PEM", base.WithPairs(KeyPair{Cert: notPEM, Key: key2}), []string{"certificate 2 of 2: tls cert " + notPEM, "no PEM certificate"}},
		{"third key missing", base.WithPairs(KeyPair{Cert: cert2, Key: key2}, KeyPair{Cert: cert, Key: missing}), []string{"certificate 3 of 3: tls key: open " + missing}},
		{"second without key", base.WithPairs(KeyPair{Cert: cert2}), []string{"tls key: no file given (cert is " + cert2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadServer(tt.files)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestServerFilesPairs(t *testing.T) {
	f := ServerFiles{Cert: "a.crt", Key: "a.key"}
	g := f.WithPairs(KeyPair{"b.crt", "b.key"}).WithPairs(KeyPair{"c.crt", "c.key"})
	want := []KeyPair{{"a.crt", "a.key"}, {"b.crt", "b.key"}, {"c.crt", "c.key"}}
	if got := g.Pairs(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("Pairs() = %v", got)
	}
	if got := f.Pairs(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("Pairs() of one = %v", got)
	}
	// Comparable, by value: daemons key caches by ServerFiles.
	if g == f || g != f.WithPairs(want[1:]...) {
		t.Error("ServerFiles equality does not follow its pairs")
	}
}
